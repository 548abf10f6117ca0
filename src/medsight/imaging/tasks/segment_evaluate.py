"""`medsight evaluate RUN` for a segmentation run: metrics with CIs, worst cases, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from medsight.console import format_estimate, progress_bar, say
from medsight.errors import InputError
from medsight.evaluate.report.segmentation_report import (
    cases_to_illustrate,
    render_page_and_section,
)
from medsight.imaging.data.segmentation_manifest import (
    SegmentationCase,
    check_labels,
    read_segmentation_source,
)
from medsight.imaging.evaluate.segmentation_evaluation import evaluate_segmentation, load_case_pair
from medsight.imaging.explain.segmentation_overlay import comparison_overlay
from medsight.imaging.inference.postprocess import read_postprocess
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.preprocess.plan import read_plan
from medsight.imaging.tasks.segment_train import SEGMENT_DATASET_FILE
from medsight.runs.atomic import write_text_atomic
from medsight.train.training_state import saved_history


def read_segment_record(run_dir: Path) -> dict[str, Any]:
    """The data, labels and seed a segmentation run was trained with."""
    path = run_dir / SEGMENT_DATASET_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {
            "data": Path(record["data"]),
            "labels": check_labels(dict(record["labels"]), str(path)),
            "seed": int(record["seed"]),
        }
    except FileNotFoundError:
        raise InputError(
            f"{path}: missing; train the run with `medsight train --task segment`"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{path}: not a valid dataset record") from None


def _test_cases(run_dir: Path, record: dict[str, Any], data: Path | None) -> list[SegmentationCase]:
    if data is not None:
        return read_segmentation_source(data, record["labels"]).cases
    cases = read_segmentation_source(record["data"], record["labels"]).cases
    splits_path = run_dir / "splits.csv"
    if not splits_path.is_file():
        raise InputError(f"{splits_path}: missing; retrain the run")
    with open(splits_path, newline="", encoding="utf-8") as f:
        test = {row["case_id"] for row in csv.DictReader(f) if row["split"] == "test"}
    chosen = [c for c in cases if c.case_id in test]
    if not chosen:
        raise InputError(f"{splits_path}: no test cases")
    return chosen


def _overlays(
    result: dict[str, Any], cases: list[SegmentationCase], out: Path, values: list[int]
) -> dict[str, list[tuple[str, Any]]]:
    """Reference-vs-prediction overlays of the cases the report shows (worst and typical)."""
    by_id = {c.case_id: c for c in cases}
    names = result["summary"]["class_names"]
    wanted = cases_to_illustrate(result["summary"], result["per_case"])
    overlays: dict[str, list[tuple[str, Any]]] = {}
    loaded: dict[str, tuple[Any, Any, Any]] = {}
    for name, case_ids in wanted.items():
        k = names.index(name) + 1
        for case_id in case_ids:
            if case_id not in loaded:
                loaded[case_id] = load_case_pair(
                    by_id[case_id], out / "predictions" / f"{case_id}.nii.gz", values
                )
            volume, truth, pred = loaded[case_id]
            overlays.setdefault(case_id, []).append(
                (
                    f"{name}: reference outline, prediction fill",
                    comparison_overlay(volume, truth, pred, k),
                )
            )
    return overlays


def evaluate_segment_run(
    run_dir: Path,
    out: Path,
    data: Path | None,
    n_boot: int,
    tolerance_mm: float,
    overlap: float,
    mirror: bool,
    title: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Evaluate, write ``metrics.json``/``per_case.csv``/``report.html`` under ``out``.

    Returns:
        The evaluation (as in ``metrics.json``) and the report's body as an HTML fragment
        (for embedding in another report).
    """
    record = read_segment_record(run_dir)
    cases = _test_cases(run_dir, record, data)
    segmenter = Segmenter(run_dir, overlap=overlap, mirror=mirror)
    with progress_bar() as progress:
        bar = progress.add_task("segmenting + scoring test cases", total=len(cases))
        result = evaluate_segmentation(
            segmenter,
            cases,
            out,
            tolerance_mm=tolerance_mm,
            n_boot=n_boot,
            seed=record["seed"],
            on_case=lambda: progress.advance(bar),
        )
    contract = segmenter.contract
    plan_path = run_dir / "plan.json"
    notes = list(read_plan(plan_path).notes) if plan_path.is_file() else []
    notes += [f"post-processing: {n}" for n in read_postprocess(run_dir).notes]
    history = saved_history(run_dir / "checkpoints")
    extra = contract.extra
    settings = {
        "title": title or f"medsight segmentation evaluation: {run_dir.name}",
        "model": f"{contract.model_name} {contract.model_kwargs}",
        "structures": ", ".join(contract.class_names[1:]),
        "test cases": f"{len(cases)} ({len({c.patient_id for c in cases})} patients)",
        "spacing (mm)": str(contract.preprocess.spacing_mm),
        "sliding window": f"patch {contract.patch_size}, overlap {overlap}"
        + (", mirror TTA" if mirror else ""),
        "epochs run (best)": f"{extra.get('epochs_run')} ({extra.get('best_epoch')})",
        "surface Dice tolerance": f"{tolerance_mm} mm",
    }
    overlays = _overlays(result, cases, out, list(contract.label_values))
    page, section = render_page_and_section(
        result["summary"], result["per_case"], overlays, settings, history=history, notes=notes
    )
    write_text_atomic(out / "report.html", page)
    return result, section


def print_segment_headline(result: dict[str, Any]) -> None:
    """One line per structure: Dice (95% CI) and, for lesions, detection sensitivity."""
    summary = result["summary"]
    for name in summary["class_names"]:
        row = summary["per_class"][name]
        line = f"{name}: Dice {format_estimate(row['metrics']['dice']['mean'])}"
        hd = row["metrics"]["hd95_mm"]["mean"]
        if hd["point"] is not None:
            line += f"  HD95 {hd['point']:.1f} mm"
        if row.get("lesions"):
            lesions = row["lesions"]
            line += (
                f"  detection sensitivity {format_estimate(lesions['sensitivity'])}"
                f"  FP/case {lesions['fp_per_case']['point']:.2f}"
            )
        print(line)
    say(f"cases: {summary['n_cases']} ({summary['n_patients']} patients)")
