"""`medsight predict RUN INPUT...`: the run's task predicts each input (table or ``--json``).

INPUT may be image files, DICOM series folders, or a manifest CSV listing them (its
``path``/``series_dir`` column, or ``image`` for a segmentation manifest); for an EHR risk
run, one patient's record per file (a FHIR Bundle JSON, or MEDS rows as parquet or JSON).
A task whose inputs are never manifests says so with ``input_manifests = False``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import typer


def _manifest_images(path: Path) -> list[Path]:
    from medsight.imaging.data.manifest import read_manifest
    from medsight.imaging.data.segmentation_manifest import read_segmentation_csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        columns = csv.DictReader(f).fieldnames or []
    if "mask" in columns and "image" in columns:
        return [case.image_path for case in read_segmentation_csv(path)]
    return [case.image_path for case in read_manifest(path)]


def _inputs(paths: list[Path], manifests: bool = True) -> list[Path]:
    expanded: list[Path] = []
    for path in paths:
        if manifests and path.is_file() and path.suffix.lower() == ".csv":
            expanded += _manifest_images(path)
        else:
            expanded.append(path)
    return expanded


def predict(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors and model.json."
    ),
    inputs: list[Path] = typer.Argument(
        ...,
        help="DICOM series folders or files, NIfTI, PNG, or a manifest CSV listing them; "
        "ehr-risk: one patient's FHIR Bundle JSON or MEDS rows (parquet/JSON) per file.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    heatmap: Path = typer.Option(
        None, "--heatmap", help="Also write Grad-CAM overlays + NIfTI heatmaps under this folder."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Segmentation runs: folder for masks, DICOM SEG, overlays."
    ),
    overlap: float = typer.Option(
        0.25, "--overlap", min=0.0, max=0.9, help="Segmentation: sliding-window overlap."
    ),
    mirror: bool = typer.Option(
        False, "--mirror", help="Segmentation: left-right mirror test-time augmentation."
    ),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="auto, fp32 or bf16. auto is fp32: bf16 inference measured no faster on the "
        "whole predict path and moves segmentation boundaries; bf16 only where the CPU has "
        "native bf16 (AVX512_BF16/AMX).",
    ),
) -> None:
    """Classify, segment, or score EHR risk for each input with RUN_DIR's model."""
    from medsight.cli.task_lookup import task_of_run
    from medsight.hardware import resolve_precision
    from medsight.tasks.options import PredictOptions

    bf16 = resolve_precision(precision, auto_bf16=False) == "bf16"
    options = PredictOptions(
        out=out, heatmap=heatmap, overlap=overlap, mirror=mirror, bf16=bf16, as_json=as_json
    )
    task = task_of_run(run_dir)
    manifests = bool(getattr(task, "input_manifests", True))
    task.predict(run_dir, _inputs(inputs, manifests), options)
