"""Evaluate a segmentation run on held-out cases, in each image's own geometry.

Each test image is segmented exactly as ``medsight predict`` would (`Segmenter`: contract,
sliding window, resampling back, post-processing); its reference label map is read and
checked against the image grid, and both are scored per structure (Dice, IoU, HD95,
surface Dice, volume difference) and, for lesion-like structures, lesion by lesion. The
summary carries 95% CIs by patient bootstrap. Predicted label maps are written as NIfTI
under ``OUT/predictions/`` so any case can be opened beside its reference.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsight.evaluate.segmentation.segmentation_summary import case_record, summarise_segmentation
from medsight.imaging.data.segmentation_cache import label_indices, read_label_map
from medsight.imaging.data.segmentation_manifest import SegmentationCase
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.io.nifti import write_mask_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.runs.atomic import atomic_path, write_text_atomic

#: structure names scored lesion by lesion unless the caller says otherwise
LESION_WORDS = ("nodule", "lesion", "tumor", "tumour", "mass", "metasta", "cyst")


def lesion_structures(names: Sequence[str]) -> list[str]:
    """Structures whose name says they are lesions (counted one by one)."""
    return [n for n in names if any(w in n.lower() for w in LESION_WORDS)]


def evaluate_segmentation(
    segmenter: Segmenter,
    cases: list[SegmentationCase],
    out: Path,
    tolerance_mm: float = 2.0,
    lesions: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    on_case: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Segment and score ``cases``; write ``metrics.json``, ``per_case.csv``, predictions.

    Returns:
        ``{"summary": summarise_segmentation(...), "per_case": [case records],
        "tolerance_mm", "lesion_structures"}``.

    Raises:
        InputError: an image or reference cannot be read, or the reference is off the
            image grid or holds undeclared values.
    """
    names = segmenter.class_names
    values = segmenter.contract.label_values
    lesion_names = lesion_structures(names[1:]) if lesions is None else list(lesions)
    labels = dict(enumerate(names[1:], start=1))
    per_case: list[dict[str, Any]] = []
    for case in cases:
        volume = read_image(case.image_path)
        # a NIfTI label map (grid checked) or a DICOM SEG (geometry checked, segments mapped)
        truth = label_indices(read_label_map(case, volume), values, str(case.mask_path))
        pred = segmenter.indices(volume)
        record = case_record(
            case.case_id, pred, truth, volume.spacing_mm, labels, tolerance_mm, lesion_names
        )
        record["patient_id"] = case.patient_id
        per_case.append(record)
        lookup = np.array([0, *values], dtype=np.uint16)
        write_mask_nifti(out / "predictions" / f"{case.case_id}.nii.gz", lookup[pred], volume)
        if on_case:
            on_case()
    summary = summarise_segmentation(
        per_case, [c.patient_id for c in cases], seed=seed, n_boot=n_boot
    )
    result = {
        "summary": summary,
        "per_case": per_case,
        "tolerance_mm": tolerance_mm,
        "lesion_structures": lesion_names,
    }
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=2, allow_nan=False))
    _write_per_case_csv(out / "per_case.csv", per_case, names[1:])
    return result


def _write_per_case_csv(path: Path, per_case: list[dict[str, Any]], names: list[str]) -> None:
    metrics = ("dice", "iou", "hd95_mm", "surface_dice", "volume_diff_ml")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["case_id", "patient_id", "structure", *metrics])
        for record in per_case:
            for name in names:
                row = record["metrics"][name]
                writer.writerow(
                    [record["case_id"], record["patient_id"], name]
                    + ["" if row[m] is None else f"{row[m]:.4f}" for m in metrics]
                )


def load_case_pair(
    case: SegmentationCase, prediction: Path, label_values: list[int]
) -> tuple[Volume, np.ndarray, np.ndarray]:
    """Image, reference indices and predicted indices of an evaluated case (for overlays)."""
    volume = read_image(case.image_path)
    truth = label_indices(read_label_map(case, volume), label_values, str(case.mask_path))
    pred = label_indices(read_image(prediction).array, label_values, str(prediction))
    return volume, truth, pred
