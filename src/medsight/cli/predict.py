"""`medsight predict RUN INPUT...`: class probabilities (and conformal sets) for new inputs.

(Segmentation runs are handled by `medsight.imaging.tasks.segment_predict`: masks, DICOM SEG,
structure volumes and overlays written under ``--out``.)

INPUT may be image files, DICOM series folders, or a manifest CSV (its ``path`` or
``series_dir`` column). Inputs are preprocessed with the run's contract and predicted in
batches; ONNX Runtime is used when the run was exported. When the run has been evaluated,
``RUN/conformal.json`` turns each prediction into a conformal set (classes the model cannot
rule out at the calibrated coverage); a set that is not a single class means "refer".
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from medsight.console import console, progress_bar
from medsight.errors import InputError
from medsight.imaging.data.manifest import read_manifest
from medsight.imaging.data.segmentation_manifest import read_segmentation_csv
from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.explain.conformal_sets import conformal_sets
from medsight.imaging.explain.explain_run import HEATMAP_FILE, explain_input
from medsight.imaging.inference.predictor import Predictor
from medsight.imaging.models.ensemble import read_run_contract
from medsight.imaging.tasks.segment_predict import predict_segment

CHUNK = 16


def _manifest_images(path: Path) -> list[Path]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        columns = csv.DictReader(f).fieldnames or []
    if "mask" in columns and "image" in columns:
        return [case.image_path for case in read_segmentation_csv(path)]
    return [case.image_path for case in read_manifest(path)]


def _inputs(paths: list[Path]) -> list[Path]:
    expanded: list[Path] = []
    for path in paths:
        if path.is_file() and path.suffix.lower() == ".csv":
            expanded += _manifest_images(path)
        else:
            expanded.append(path)
    return expanded


def predict(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors and model.json."
    ),
    inputs: list[Path] = typer.Argument(
        ..., help="DICOM series folders or files, NIfTI, PNG, or a manifest CSV listing them."
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
    bf16: bool = typer.Option(False, "--bf16", help="Segmentation: bf16 autocast."),
) -> None:
    """Classify (probabilities) or segment (masks, DICOM SEG) each input with RUN_DIR's model."""
    if read_run_contract(run_dir).task == "segment":
        if out is None:
            raise InputError("a segmentation run writes files: give --out FOLDER")
        predict_segment(run_dir, _inputs(inputs), out, overlap, mirror, bf16, as_json)
        return
    predictor = Predictor(run_dir)
    names = predictor.class_names
    paths = _inputs(inputs)
    contract = predictor.contract.preprocess
    chunks = []
    with progress_bar() as progress:
        bar = progress.add_task("predicting", total=len(paths))
        # chunks bound the memory: a long manifest is never held in RAM at once
        for start in range(0, len(paths), CHUNK):
            batch = np.stack([preprocess_image(p, contract) for p in paths[start : start + CHUNK]])
            chunks.append(predictor.predict_array(batch))
            progress.advance(bar, len(batch))
    probs = np.concatenate(chunks)
    sets = conformal_sets(run_dir, probs, names)
    results: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        result: dict[str, Any] = {
            "input": str(path),
            "predicted": names[int(probs[i].argmax())],
            "probabilities": {n: float(p) for n, p in zip(names, probs[i], strict=True)},
        }
        if sets is not None:
            result["conformal_set"] = sets[i]
            result["refer"] = len(sets[i]) != 1
        if heatmap is not None:
            folder = heatmap / f"{i + 1:04d}_{path.name}"
            explain_input(run_dir, path, folder)
            result["heatmap"] = str(folder / HEATMAP_FILE)
        results.append(result)
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results))
        return
    table = Table(title=f"predictions of {run_dir}")
    for column in ["input", *names, "predicted", *(["conformal set"] if sets else [])]:
        table.add_column(column)
    for r in results:
        row = [r["input"], *[f"{r['probabilities'][n]:.3f}" for n in names], r["predicted"]]
        if sets is not None:
            row.append("{" + ", ".join(r["conformal_set"]) + "}" + (" refer" if r["refer"] else ""))
        table.add_row(*row)
    console.print(table)
