"""Explain one prediction of a trained run: overlays, an aligned NIfTI heatmap, a record.

`explain_input` loads a run folder (``model.safetensors`` + ``model.json``), reads an image
as ``medsight predict`` does, and writes into ``out_dir`` (each file atomically):

* ``heatmap.nii.gz``: the map on the *input's* voxel grid, with the input's affine (float32,
  ``[0, 1]``, 0 outside the region the model sees), so any viewer overlays it on the input;
* ``overlay_zNNN.png``: the axial slices of the model's input with the most attribution,
  the heatmap drawn over the same crop *without* the lung mask (the anatomy around the
  lungs helps a reader place the highlight); ``NNN`` is the slice on the model grid;
* ``explanation.json``: class probabilities, the class explained, the method, the model
  grid's place in the input and, per overlay, its slice ``z`` on the model grid, the
  nearest slice ``input_z`` of the input volume (``[z, y, x]`` as read) and its share of
  the total attribution.

Probabilities are those of ``medsight predict`` (averaged with the left-right mirrored
input); the map explains the model on the input as given, unmirrored. For an ensemble run
the map is the mean of its members' maps (each scaled to ``[0, 1]``), rescaled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsight.errors import InputError
from medsight.imaging.explain.attribution import METHODS, attribution_map
from medsight.imaging.explain.heatmap_geometry import heatmap_to_input, model_grid
from medsight.imaging.explain.heatmap_scaling import scaled_to_unit
from medsight.imaging.explain.overlay import overlay_png
from medsight.imaging.inference.predictor import Predictor
from medsight.imaging.io.nifti import write_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.preprocess.contract import apply_contract, canonical_volume
from medsight.runs.atomic import atomic_path, write_text_atomic

HEATMAP_FILE = "heatmap.nii.gz"
RECORD_FILE = "explanation.json"


def explain_input(
    run_dir: Path,
    input_path: Path,
    out_dir: Path,
    method: str = "gradcam",
    class_name: str | None = None,
    n_slices: int = 3,
) -> dict[str, Any]:
    """Explain the run's prediction for one image and write the explanation files.

    Args:
        run_dir: A run folder holding ``model.safetensors`` and ``model.json``.
        input_path: A DICOM series folder or file, a NIfTI, PNG or JPEG (see `read_image`).
        out_dir: Folder the files are written into (created if missing; files of the same
            names are replaced, other files are left alone).
        method: ``"gradcam"``, ``"gradcampp"`` or ``"occlusion"``.
        class_name: Class to explain; None explains the predicted class.
        n_slices: Overlays to write (fewer when fewer slices carry any attribution).

    Returns:
        The record written to ``explanation.json``; its ``files`` are names in ``out_dir``.

    Raises:
        InputError: If the method or class is unknown, ``n_slices`` is below 1, ``out_dir``
            is a file, the run cannot be loaded or is not a 3D classifier, or the input
            cannot be read or is a colour image.
    """
    run_dir, input_path, out_dir = Path(run_dir), Path(input_path), Path(out_dir)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if n_slices < 1:
        raise InputError(f"the number of slices to draw must be at least 1, got {n_slices}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; pick another output folder")
    predictor = Predictor(run_dir)
    contract = predictor.contract
    # a segmentation contract fixes a sliding window (patch_size); a classifier's does not
    if contract.patch_size is not None or contract.spatial_dims != 3:
        raise InputError(
            f"{run_dir}: explain works on 3D classifiers; this run is a "
            f"{contract.spatial_dims}D {contract.task!r} model"
        )
    class_names = predictor.class_names
    if class_name is not None and class_name not in class_names:
        raise InputError(
            f"unknown class {class_name!r}; the model's classes are {', '.join(class_names)}"
        )
    volume = read_image(input_path)
    if volume.channels != 1:
        raise InputError(f"{input_path}: a colour image; the model reads grey-scale images")

    array = apply_contract(volume, contract.preprocess)
    probabilities = predictor.predict_array(array[None])[0]
    predicted = class_names[int(np.argmax(probabilities))]
    explained = predicted if class_name is None else class_name
    class_index = class_names.index(explained)
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    # an ensemble run (``--folds K``) predicts with the mean of its members: explain each
    models: list[torch.nn.Module] = list(getattr(predictor, "models", [predictor.model]))
    target_layer = None if method == "occlusion" else getattr(models[0], "cam_layer", None)
    heat = scaled_to_unit(
        np.mean([attribution_map(m, x, class_index, method, target_layer) for m in models], axis=0)
    )

    grid = model_grid(volume, contract.preprocess)
    # maps go back onto the input in the contract's orientation, written with its affine
    oriented = canonical_volume(volume, contract.preprocess)
    display = apply_contract(
        volume,
        contract.preprocess.model_copy(
            update={"mask_outside_lungs": False, "normalisation": "window"}
        ),
    )
    spacing_z, spacing_y, spacing_x = contract.preprocess.spacing_mm
    total = float(heat.sum())
    warnings = list(volume.warnings)
    if total <= 0.0:
        warnings.append(f"the {method} map is empty: no region raised the score of {explained}")

    out_dir.mkdir(parents=True, exist_ok=True)
    files = [HEATMAP_FILE]
    write_nifti(out_dir / HEATMAP_FILE, heatmap_to_input(heat, grid), oriented.affine_ras())
    slices = []
    centre_yx = [(grid.crop_shape[1] - 1) / 2, (grid.crop_shape[2] - 1) / 2]
    for z in _top_slices(heat, n_slices):
        name = f"overlay_z{z:03d}.png"
        share = float(heat[z].sum()) / total if total > 0 else 0.0
        png = overlay_png(
            np.clip(display[z], 0.0, 1.0),
            heat[z],
            f"{method}: {explained} (p={probabilities[class_index]:.2f}), slice {z}",
            aspect=spacing_y / spacing_x,
        )
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(png)
        input_z = float(grid.input_index(np.array([z, *centre_yx]))[0])
        slices.append(
            {
                "z": z,
                "input_z": int(np.clip(round(input_z), 0, volume.shape[0] - 1)),
                "attribution_share": round(share, 4),
                "file": name,
            }
        )
        files.append(name)
    files.append(RECORD_FILE)
    record: dict[str, Any] = {
        "input": str(input_path),
        "run_dir": str(run_dir),
        "model_name": contract.model_name,
        "n_models": len(models),
        "method": method,
        "target_layer": target_layer,
        "class_name": explained,
        "predicted": predicted,
        "probabilities": {
            name: float(p) for name, p in zip(class_names, probabilities, strict=True)
        },
        "model_grid": {
            "spacing_mm": [spacing_z, spacing_y, spacing_x],
            "shape": list(grid.crop_shape),
            "resampled_shape": list(grid.resampled_shape),
            "crop_start": list(grid.crop_start),
        },
        "slices": slices,
        "files": files,
        "warnings": warnings,
    }
    write_text_atomic(out_dir / RECORD_FILE, json.dumps(record, indent=2) + "\n")
    return record


def _top_slices(heat: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` z indices with the most attribution, most first; the middle one if none."""
    per_slice = heat.sum(axis=(1, 2))
    order = np.argsort(-per_slice, kind="stable")
    chosen = [int(z) for z in order[:n] if per_slice[z] > 0]
    return chosen or [heat.shape[0] // 2]
