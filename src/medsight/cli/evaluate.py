"""`medsight evaluate RUN [--data TEST]`: metrics with CIs, calibration, subgroups, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from medsight.cli.train import prepare_with_progress
from medsight.console import format_estimate, say
from medsight.errors import InputError
from medsight.imaging.data.manifest import read_manifest
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.data.volume_loading import load_cases
from medsight.imaging.models.ensemble import read_run_contract
from medsight.imaging.tasks.classify_data import ClassificationData
from medsight.imaging.tasks.classify_evaluate import ReportSettings, report_run
from medsight.imaging.tasks.segment_evaluate import evaluate_segment_run, print_segment_headline

DATASET_FILE = "dataset.json"


def read_dataset_record(run_dir: Path) -> dict:
    """The manifest, classes and seed a run was trained with (``RUN/dataset.json``)."""
    path = run_dir / DATASET_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; train the run with `medsight train` or `medsight demo`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {
            "manifest": Path(record["manifest"]),
            "classes": list(record["classes"]),
            "seed": int(record["seed"]),
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{path}: not a valid dataset record") from None


def with_external_test(
    prepared: ClassificationData, test_manifest: Path, run_dir: Path
) -> ClassificationData:
    """Keep the run's validation split (calibration, thresholds) and test on another manifest."""
    test_cases = read_manifest(test_manifest)
    unknown = sorted({c.label for c in test_cases} - set(prepared.class_names))
    if unknown:
        raise InputError(f"{test_manifest}: label(s) {unknown} not among the model's classes")
    volumes, _ = load_cases(test_cases, prepared.plan.preprocess, run_dir / "cache", workers=2)
    val = prepared.indices("val")
    cases = [prepared.cases[i] for i in val] + test_cases
    splits = {c.case_id: "val" for c in cases[: len(val)]}
    splits.update({c.case_id: "test" for c in test_cases})
    if len(splits) != len(cases):
        raise InputError(f"{test_manifest}: case ids collide with the run's validation cases")
    labels = np.concatenate(
        [prepared.labels[val], [prepared.class_names.index(c.label) for c in test_cases]]
    )
    paths = [prepared.volumes.paths[i] for i in val] + volumes.paths
    return ClassificationData(
        cases,
        prepared.class_names,
        labels.astype(int),
        splits,
        prepared.plan,
        CachedVolumes(paths),
        0,
    )


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder made by `medsight train` or `demo`."),
    data: Path = typer.Option(
        None, "--data", help="External test manifest (default: the run's test split)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/eval)."),
    sensitivity: float = typer.Option(
        0.0,
        "--sensitivity",
        min=0.0,
        max=1.0,
        help="Operating point at this validation sensitivity (default: Youden).",
    ),
    coverage: float = typer.Option(
        0.90, "--coverage", min=0.5, max=0.999, help="Conformal set coverage."
    ),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap resamples per CI."),
    tolerance_mm: float = typer.Option(
        2.0, "--tolerance-mm", min=0.0, help="Segmentation: surface Dice tolerance (mm)."
    ),
    overlap: float = typer.Option(
        0.25, "--overlap", min=0.0, max=0.9, help="Segmentation: sliding-window overlap."
    ),
    mirror: bool = typer.Option(False, "--mirror", help="Segmentation: mirror TTA."),
) -> None:
    """Evaluate a run on its test split (or --data): metrics with CIs and a report.

    Classification: calibration, operating point, subgroups, conformal sets, Grad-CAM.
    Segmentation: Dice, IoU, HD95, surface Dice, volumes, lesion detection, worst cases.
    """
    if read_run_contract(run_dir).task == "segment":
        out = out or run_dir / "eval"
        result, _ = evaluate_segment_run(run_dir, out, data, n_boot, tolerance_mm, overlap, mirror)
        print_segment_headline(result)
        say(f"report: {out / 'report.html'}")
        return
    record = read_dataset_record(run_dir)
    prepared = prepare_with_progress(
        record["manifest"], run_dir, record["seed"], record["classes"], False
    )
    if data is not None:
        prepared = with_external_test(prepared, data, run_dir)
    out = out or run_dir / "eval"
    settings = ReportSettings(
        title=f"medsight evaluation: {run_dir.name}",
        target_sensitivity=sensitivity or None,
        coverage=coverage,
        n_boot=n_boot,
        seed=record["seed"],
    )
    evaluation = report_run(run_dir, prepared, out, settings)
    print_headline(evaluation)
    say(f"report: {out / 'report.html'}")


def print_headline(evaluation: dict) -> None:
    """One line per headline metric with its CI (always printed, even under --quiet)."""
    ci = evaluation["with_ci"]
    auc, acc = ci["macro"]["roc_auc"], ci["overall"]["accuracy"]
    print(f"test accuracy {format_estimate(acc)}  macro AUC {format_estimate(auc)}")
