"""Predicting with a segmentation run: label maps, DICOM SEG, structure volumes, overlays.

`predict_segment` is `medsight predict RUN INPUT... -o OUT` for a segmentation run;
`LoadedSegmenter` is the same model loaded once for the service. Both produce
`SegmentationResult` records.

Per input, in ``OUT/NNNN_name/``: ``segmentation.nii.gz`` (label values, the input's
affine), ``segmentation.dcm`` (DICOM SEG referencing the source slices; DICOM inputs only),
``structures.json`` (volume per structure, size and location of each component) and
overlay PNGs. ``OUT/predictions.json`` lists every input with its outputs. Each input's
folder is written whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

import medsight
from medsight.console import console, progress_bar
from medsight.errors import InputError
from medsight.imaging.evaluate.structure_measurements import measure_structures
from medsight.imaging.explain.segmentation_overlay import write_prediction_overlays
from medsight.imaging.inference.segmenter import Segmentation, Segmenter
from medsight.imaging.io.dicom_seg import describe_segment, write_dicom_seg
from medsight.imaging.io.nifti import write_mask_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.runs.atomic import atomic_dir, write_text_atomic
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import SegmentationResult

NIFTI_FILE, SEG_FILE, STRUCTURES_FILE = "segmentation.nii.gz", "segmentation.dcm", "structures.json"
PREDICTIONS_FILE = "predictions.json"


def _folder_name(i: int, path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".dcm", ".png", ".jpg"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"{i + 1:04d}_{name or 'input'}"


def segment_one(segmenter: Segmenter, path: Path, folder: Path) -> SegmentationResult:
    """Segment ``path`` and write its outputs into ``folder`` (atomically, as a whole)."""
    volume = read_image(path)
    return write_segmentation(segmenter, path, volume, segmenter.segment(volume), folder)


def write_segmentation(
    segmenter: Segmenter, path: Path, volume: Volume, result: Segmentation, folder: Path
) -> SegmentationResult:
    """``folder``'s files for ``result``, the segmentation of ``volume`` read from ``path``."""
    names = result.class_names
    record: dict[str, Any] = {"input": str(path), "output_dir": str(folder)}
    with atomic_dir(folder) as tmp:
        write_mask_nifti(tmp / NIFTI_FILE, result.labels, volume)
        record["segmentation"] = str(folder / NIFTI_FILE)
        if str(volume.meta.get("kind", "")).startswith("dicom"):
            segments = [describe_segment(k, name) for k, name in enumerate(names[1:], start=1)]
            contract = segmenter.contract
            write_dicom_seg(
                result.indices,
                path,
                segments,
                tmp / SEG_FILE,
                algorithm_name=f"medsight {contract.model_name}",
                algorithm_version=medsight.__version__,
                volume=volume,  # read once: the SEG needs only the source's headers again
            )
            record["dicom_seg"] = str(folder / SEG_FILE)
        measured = measure_structures(result.indices, volume, names)
        measured["label_values"] = dict(zip(names[1:], result.label_values, strict=True))
        measured["model"] = segmenter.contract.model_name
        write_text_atomic(tmp / STRUCTURES_FILE, json.dumps(measured, indent=2))
        record["structures"] = measured["structures"]
        pieces = [
            {"label": name, "centroid_voxel": c["centroid_voxel"]}
            for name, s in measured["structures"].items()
            for c in s["components"][:3]
        ]
        overlays = write_prediction_overlays(
            volume, result.labels, names, result.label_values, tmp, components=pieces
        )
        record["overlays"] = [str(folder / p.name) for p in overlays]
    return SegmentationResult(**record)


def predict_segment(run_dir: Path, paths: list[Path], options: PredictOptions) -> None:
    """Segment every input into ``options.out``; print a table, or JSON with ``as_json``.

    Raises:
        InputError: no ``--out`` folder, or classification-only options.
    """
    if options.out is None:
        raise InputError("a segmentation run writes files: give --out FOLDER")
    if options.heatmap is not None:
        raise InputError("--heatmap is for classification runs; segmentations come with overlays")
    out, as_json = options.out, options.as_json
    segmenter = Segmenter(
        run_dir, overlap=options.overlap, mirror=options.mirror, bf16=options.bf16
    )
    out.mkdir(parents=True, exist_ok=True)
    records = []
    with progress_bar() as progress:
        bar = progress.add_task("segmenting", total=len(paths))
        for i, path in enumerate(paths):
            records.append(segment_one(segmenter, path, out / _folder_name(i, path)).to_json())
            progress.advance(bar)
    write_text_atomic(out / PREDICTIONS_FILE, json.dumps(records, indent=2))
    if as_json:
        print(json.dumps(records[0] if len(records) == 1 else records))
        return
    names = segmenter.class_names[1:]
    table = Table(title=f"segmentations by {run_dir} (volumes in mL)")
    for column in ["input", *names, "components", "output"]:
        table.add_column(column)
    for r in records:
        structures = r["structures"]
        table.add_row(
            r["input"],
            *[f"{structures[n]['volume_ml']:.1f}" for n in names],
            ", ".join(f"{n} {structures[n]['n_components']}" for n in names),
            r["output_dir"],
        )
    console.print(table)


def _relative(value: Any, root: Path) -> Any:
    """``value`` with every string path under ``root`` made relative to it."""
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    if isinstance(value, str) and value.startswith(str(root)):
        return Path(value).relative_to(root).as_posix()
    return value


class LoadedSegmenter:
    """A segmentation run loaded once for the service."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.segmenter = Segmenter(folder)
        self.contract = self.segmenter.contract

    def is_2d(self) -> bool:
        """True when the network segments single 2D images (a one-slice patch)."""
        patch = self.contract.patch_size
        return self.contract.spatial_dims == 2 or (patch is not None and patch[0] == 1)

    def predict(self, source: Path, out: Path, heatmap: bool) -> SegmentationResult:
        """The label map and its files for ``source``; paths in the record relative to ``out``.

        ``heatmap`` is not used: a segmentation's overlays are always written.
        """
        record = segment_one(self.segmenter, source, out / "segmentation")
        files = sorted(p.relative_to(out).as_posix() for p in (out / "segmentation").iterdir())
        return SegmentationResult(structures=_relative(record.structures, out), files=files)
