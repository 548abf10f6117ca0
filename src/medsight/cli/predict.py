"""`medsight predict RUN INPUT...`: the run's task predicts each input (table or ``--json``).

INPUT may be image files, DICOM series folders, or a manifest CSV listing them (its
``path``/``series_dir`` column, or ``image`` for a segmentation manifest); for an EHR risk
run, one patient's record per file (a FHIR Bundle JSON, or MEDS rows as parquet or JSON).
A task whose inputs are never manifests says so with ``input_manifests = False``.

With ``--engine local|ray`` (or ``--jobs N``) the inputs are a resumable batch
(`medsight.batch`): each input's result goes to ``OUT/<input digest>-<model digest>/``,
inputs already there are skipped, and ``OUT/batch_summary.json`` lists what was done,
skipped and failed. Without them, the inputs are predicted in this process and printed.
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
    engine: str = typer.Option(
        None,
        "--engine",
        help="Batch prediction into --out, resumable (inputs already done are skipped): "
        "local (a process pool on this machine) or ray (Ray Data; pip install medsight\\[ray]).",
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="Batch: worker processes (local) or model actors (ray); default one per core. "
        "1 predicts in this process. Implies --engine local.",
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

    if engine is not None or jobs is not None:
        _refuse_batch_tuning(overlap, mirror, precision)
        _predict_batch(run_dir, inputs, out, engine or "local", jobs, as_json, heatmap)
        return
    bf16 = resolve_precision(precision, auto_bf16=False) == "bf16"
    options = PredictOptions(
        out=out, heatmap=heatmap, overlap=overlap, mirror=mirror, bf16=bf16, as_json=as_json
    )
    task = task_of_run(run_dir)
    manifests = bool(getattr(task, "input_manifests", True))
    task.predict(run_dir, _inputs(inputs, manifests), options)


def _refuse_batch_tuning(overlap: float, mirror: bool, precision: str) -> None:
    """Batch prediction runs each task's loaded model as the service does: no tuning flags."""
    from medsight.errors import InputError

    used = [
        flag
        for flag, given in (
            ("--overlap", overlap != 0.25),
            ("--mirror", mirror),
            ("--precision", precision != "auto"),
        )
        if given
    ]
    if used:
        raise InputError(f"{', '.join(used)}: not options of batch prediction (--engine/--jobs)")


def _predict_batch(
    run_dir: Path,
    inputs: list[Path],
    out: Path | None,
    engine: str,
    jobs: int | None,
    as_json: bool,
    heatmap: Path | None,
) -> None:
    import json

    from medsight.batch.batch_prediction import predict_batch
    from medsight.cli.task_lookup import task_of_run
    from medsight.console import progress_bar, say
    from medsight.errors import InputError

    if out is None:
        raise InputError("batch prediction writes one folder per input: give --out FOLDER")
    if heatmap is not None:
        raise InputError("--heatmap is not an option of batch prediction; use `medsight explain`")
    task = task_of_run(run_dir)  # a folder that is not a run fails here, before any work
    expanded = _inputs(inputs, bool(getattr(task, "input_manifests", True)))
    with progress_bar() as progress:
        bar = progress.add_task(f"predicting ({engine})", total=len(expanded))
        summary = predict_batch(
            run_dir, expanded, out, engine, jobs, lambda _: progress.advance(bar)
        )
    if as_json:
        print(json.dumps(summary.to_json()))
    else:
        for line in summary.lines():
            say(line)
        say(f"summary: {out / 'batch_summary.json'}")
    if summary.failed:
        raise typer.Exit(1)
