"""Evaluate a trained classification run and write what a clinical reviewer reads.

The image-classify task's evaluation: the engine's metrics (`medsight.evaluate`) on the
run's test split (or an external manifest), with Grad-CAM from imaging's explain/. Writes
into the output folder ``metrics.json`` (everything `evaluate_classifier` computes),
``predictions.csv`` (per test case: probabilities, conformal set), ``model_card.md`` and
the self-contained ``report.html``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsight.console import format_estimate, say
from medsight.errors import InputError
from medsight.evaluate.classification.class_decision import write_decision_rule
from medsight.evaluate.classification.classifier_evaluation import (
    SplitPredictions,
    evaluate_classifier,
)
from medsight.evaluate.report.figures import (
    confusion_figure,
    pr_figure,
    roc_figure,
    training_curves_figure,
)
from medsight.evaluate.report.html_report import write_report
from medsight.evaluate.report.model_card import build_model_card, write_model_card
from medsight.evaluate.report.reliability_figure import reliability_figure
from medsight.imaging.data.manifest import read_manifest
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.data.volume_loading import load_cases, preprocess_image
from medsight.imaging.explain.gradcam import gradcam_volume, top_slice
from medsight.imaging.explain.overlay import overlay_png
from medsight.imaging.explain.sanity import randomisation_check
from medsight.imaging.inference.predictor import Predictor
from medsight.imaging.models.checkpoint import library_versions
from medsight.imaging.tasks.classify_data import ClassificationData
from medsight.imaging.tasks.classify_train import DATASET_FILE, prepare_with_progress
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import EvaluateOptions
from medsight.train.training_state import saved_history

CONFORMAL_FILE = "conformal.json"
INTENDED_USE = (
    "Research and method development: classifying chest CT series as normal, benign nodule or "
    "malignant nodule, as an assistive second reader. Not a medical device; not for diagnosis."
)


@dataclass(frozen=True)
class ReportSettings:
    """What the evaluation uses and how the report is titled."""

    title: str = "medsight classification report"
    target_sensitivity: float | None = None
    coverage: float = 0.90
    n_boot: int = 1000
    seed: int = 0
    gallery_per_group: int = 3
    limitations: tuple[str, ...] = (
        "Trained and tested on synthetic phantoms: performance on real CT is unknown.",
        "One scanner-like protocol (5 mm slices); other reconstructions are out of distribution.",
        "Nodules under about 10 mm span two or three voxels at the demo's 3 mm x 5 mm "
        "resolution and are the most often missed.",
        "Test split is small: read the confidence intervals, not the point estimates.",
    )


def _split(data: ClassificationData, predictor: Predictor, split: str) -> SplitPredictions:
    rows = data.indices(split)
    cases = [data.cases[i] for i in rows]
    probs = predictor.predict_array(data.volumes.subset(rows))
    return SplitPredictions(
        y=data.labels[rows],
        probs=probs,
        patient_ids=[c.patient_id for c in cases],
        case_ids=[c.case_id for c in cases],
        sex=[c.sex for c in cases],
        age=[float(c.age) if c.age else float("nan") for c in cases],
    )


def _data_summary(data: ClassificationData) -> list[dict[str, Any]]:
    rows = []
    for split in ("train", "val", "test"):
        idx = data.indices(split)
        row: dict[str, Any] = {
            "split": split,
            "cases": len(idx),
            "patients": len({data.cases[i].patient_id for i in idx}),
        }
        for c, name in enumerate(data.class_names):
            row[name] = int((data.labels[idx] == c).sum())
        rows.append(row)
    return rows


def _gallery(
    data: ClassificationData,
    predictor: Predictor,
    test: SplitPredictions,
    sets: dict[str, list[str]],
    per_group: int,
) -> list[dict[str, Any]]:
    """Grad-CAM overlays: a few correct, wrong and abstained (referred) test cases.

    The heatmap is computed on the model's input (lung fields only) and drawn over the same
    crop without the lung mask, re-read from disk, so the reader sees the anatomy.
    """
    model = predictor.model
    contract = predictor.contract.preprocess
    display_contract = contract.model_copy(update={"mask_outside_lungs": False})
    rows = data.indices("test")
    predicted = test.probs.argmax(1)
    groups: dict[str, list[int]] = {"correct": [], "wrong": [], "abstained": []}
    for i, case_id in enumerate(test.case_ids):
        if len(sets.get(case_id, [])) != 1:
            groups["abstained"].append(i)
        groups["correct" if predicted[i] == test.y[i] else "wrong"].append(i)
    gallery: list[dict[str, Any]] = []
    for group, members in groups.items():
        # abnormal cases first: their heatmaps show whether the model looks at the lesion
        members.sort(key=lambda i: (test.y[i] == 0, -test.probs[i].max()))
        for i in members[:per_group]:
            case = data.cases[rows[i]]
            x = torch.from_numpy(
                np.asarray(data.volumes[int(rows[i])], dtype=np.float32)[None, None]
            )
            heat = gradcam_volume(model, x, int(predicted[i]), str(model.cam_layer))
            display = preprocess_image(case.image_path, display_contract)
            if heat.ndim == 2:  # a 2D model (one-slice images): its map is the one slice
                heat, display, x = heat[None], display[None], x[:, :, None]
            # slices outside the lung fields (all zero in the model input) are never shown
            k = top_slice(heat * (x[0, 0].numpy() > 0)) if bool((x > 0).any()) else top_slice(heat)
            truth, guess = data.class_names[test.y[i]], data.class_names[predicted[i]]
            members_of = sets.get(case.case_id, [])
            title = (
                f"{case.case_id}: {truth}, predicted {guess} (p={test.probs[i, predicted[i]]:.2f})"
            )
            gallery.append(
                {
                    "png": overlay_png(display[k], heat[k], title),
                    "caption": f"{title}; conformal set {{{', '.join(members_of)}}}; slice {k} "
                    "of the model input, where Grad-CAM peaks",
                    "group": group,
                }
            )
    return gallery


def _sanity_check(
    data: ClassificationData, predictor: Predictor, test: SplitPredictions, n_cases: int = 3
) -> dict[str, Any]:
    """Adebayo et al. (2018): the trained model's Grad-CAM must differ from a random model's.

    Run on the most confident abnormal test cases; reports each Spearman rank correlation
    and whether every one is below the threshold (|rho| < 0.5).
    """
    model = predictor.model
    rows = data.indices("test")
    order = sorted(range(len(rows)), key=lambda i: (test.y[i] == 0, -test.probs[i].max()))
    results = []
    for i in order[:n_cases]:
        x = torch.from_numpy(np.asarray(data.volumes[int(rows[i])], dtype=np.float32)[None, None])
        check = randomisation_check(model, x, int(test.probs[i].argmax()), str(model.cam_layer))
        results.append(
            {
                "case_id": test.case_ids[i],
                "spearman": check["spearman"],
                "passed": bool(check["passed"]),
            }
        )
    return {
        "method": "Grad-CAM of the trained model vs the same network with random weights",
        "threshold_abs_spearman": 0.5,
        "cases": results,
        "passed": bool(results) and all(r["passed"] for r in results),
    }


def _write_predictions(
    path: Path, test: SplitPredictions, class_names: list[str], sets: dict[str, list[str]]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["case_id", "true", "predicted", *[f"p_{c}" for c in class_names], "conformal_set"]
    )
    for i, case_id in enumerate(test.case_ids):
        writer.writerow(
            [
                case_id,
                class_names[test.y[i]],
                class_names[int(test.probs[i].argmax())],
                *[f"{p:.5f}" for p in test.probs[i]],
                "|".join(sets.get(case_id, [])),
            ]
        )
    write_text_atomic(path, buffer.getvalue())


def report_run(
    run_dir: Path,
    data: ClassificationData,
    out_dir: Path,
    settings: ReportSettings,
    history: list[dict[str, float]] | None = None,
    summary: dict[str, Any] | None = None,
    extra_sections: list[str] | None = None,
) -> dict[str, Any]:
    """Evaluate ``run_dir``'s model on ``data``'s val/test splits and write the report files.

    ``extra_sections`` are HTML fragments (already escaped, e.g. the segmentation section
    of the demo) appended to the report before its footer.

    Returns:
        The evaluation dict also written to ``metrics.json``.
    """
    predictor = Predictor(run_dir)
    val, test = _split(data, predictor, "val"), _split(data, predictor, "test")
    evaluation = evaluate_classifier(
        val,
        test,
        data.class_names,
        settings.target_sensitivity,
        settings.coverage,
        settings.n_boot,
        settings.seed,
    )
    evaluation["gradcam_sanity"] = _sanity_check(data, predictor, test)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "metrics.json", json.dumps(evaluation, indent=2))
    sets = evaluation["conformal"]["sets"]
    conformal = evaluation["conformal"]
    # the calibrated set-valued predictor travels with the model: `medsight predict` uses it
    write_text_atomic(
        run_dir / CONFORMAL_FILE,
        json.dumps(
            {key: conformal[key] for key in ("score", "alpha", "qhat", "n_calibration")}
            | {"class_names": data.class_names},
            indent=2,
        ),
    )
    # so is the per-class decision rule: `medsight predict` calls classes with its weights
    write_decision_rule(run_dir, data.class_names, evaluation["decision_rule"]["weights"])
    _write_predictions(out_dir / "predictions.csv", test, data.class_names, sets)
    versions = library_versions()
    contract = predictor.contract
    facts = {
        "model": contract.model_name,
        "model arguments": contract.model_kwargs,
        "ensemble members": len(predictor.models),
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "seed": contract.seed,
        "preprocessing": contract.preprocess.model_dump_json(),
        **{f"version {k}": v for k, v in versions.items()},
    }
    dev = [data.cases[i] for i in np.concatenate([data.indices("train"), data.indices("val")])]
    card = build_model_card(
        model_name=contract.model_name,
        class_names=data.class_names,
        intended_use=INTENDED_USE,
        training_data={
            "cases (train + val)": len(dev),
            "patients (train + val)": len({c.patient_id for c in dev}),
            "split": "by patient, stratified by label; test split held out",
            "classes": ", ".join(data.class_names),
        },
        evaluation=evaluation,
        limitations=list(settings.limitations),
        facts=facts,
    )
    write_model_card(out_dir / "model_card.md", card)
    history = history if history is not None else saved_history(run_dir / "checkpoints")
    figures = {
        "roc": roc_figure(test.y, test.probs, data.class_names),
        "pr": pr_figure(test.y, test.probs, data.class_names),
        "confusion": confusion_figure(evaluation["confusion_matrix"], data.class_names),
        "reliability": reliability_figure(test.y, test.probs),
    }
    if history:
        figures["curves"] = training_curves_figure(history)
    write_report(
        out_dir / "report.html",
        {
            "title": settings.title,
            "summary": summary or {},
            "data_summary": _data_summary(data),
            "metrics": evaluation,
            "evaluation": evaluation,
            "figures": figures,
            "heatmaps": _gallery(data, predictor, test, sets, settings.gallery_per_group),
            "model_card": card,
            "model": facts,
            "extra_sections": extra_sections or [],
            "generated_by": f"medsight {versions['medsight']}",
        },
    )
    return evaluation


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
    val_ids = {prepared.cases[i].case_id for i in val}
    if any(c.case_id in val_ids for c in test_cases):
        # manifests of bare paths number their rows (row_00001, ...) in both files: the
        # external cases get their own names in the outputs
        test_cases = [replace(c, case_id=f"external_{c.case_id}") for c in test_cases]
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


def evaluate_classify_run(run_dir: Path, options: EvaluateOptions) -> dict:
    """`medsight evaluate` for a classification run: its test split, or ``options.data``."""
    record = read_dataset_record(run_dir)
    prepared = prepare_with_progress(
        record["manifest"], run_dir, record["seed"], record["classes"], False
    )
    if options.data is not None:
        prepared = with_external_test(prepared, options.data, run_dir)
    settings = ReportSettings(
        title=f"medsight evaluation: {run_dir.name}",
        target_sensitivity=options.sensitivity,
        coverage=options.coverage,
        n_boot=options.n_boot,
        seed=record["seed"],
    )
    evaluation = report_run(run_dir, prepared, options.out, settings)
    print_headline(evaluation)
    say(f"report: {options.out / 'report.html'}")
    return evaluation


def print_headline(evaluation: dict) -> None:
    """One line per headline metric with its CI (always printed, even under --quiet)."""
    ci = evaluation["with_ci"]
    auc, acc = ci["macro"]["roc_auc"], ci["overall"]["accuracy"]
    print(f"test accuracy {format_estimate(acc)}  macro AUC {format_estimate(auc)}")
    rule = evaluation["decision_rule"]["test"]
    per_class = "  ".join(
        f"{name} {format_estimate(row['sensitivity'])}" for name, row in rule["per_class"].items()
    )
    balanced = format_estimate(rule["balanced_accuracy"])
    print(f"sensitivity at the decision rule: {per_class}  (balanced accuracy {balanced})")
