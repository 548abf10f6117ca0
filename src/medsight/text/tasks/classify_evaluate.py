"""`medsight evaluate RUN [--data OTHER]` for a text-classify run: every model, every output.

On the run's test patients (or an external set, `classify_scores`), for every encoder and
the TF-IDF baseline, per output, with 95% patient-bootstrap intervals (resampling patients,
so a patient's several notes stay together; the engine's `medsight.evaluate`):

- macro-F1 (the headline), accuracy. The macro-F1 averages the classes with
  `MIN_MACRO_NOTES`+ evaluated notes: a class with one or two test notes would make the
  average jump by its single F1 and vanish from most resamples (see `fast_macro_f1`); such
  classes are still listed, with their F1, in the per-class table;
- per class: precision, recall, F1 and support, so a class the model fails is visible and
  is flagged in the headline (recall or F1 below `WEAK_F1`), not hidden by an average;
- calibration: ECE of the top class before and after the run's per-output temperature
  (fitted on the tuning notes at training time);
- subgroups by sex and age band where the notes carry them;
- the mean macro-F1 over outputs per model (outputs with fewer than two scorable classes,
  e.g. an external set whose other labels the run never learnt, are left out and named),
  and the paired-bootstrap interval of its difference between the primary encoder and the
  baseline on the same patients.

Writes ``OUT/metrics.json``, ``OUT/report.html`` (`classify_report`) and ``OUT/model_card.md``;
no note text and no patient identifier appears in any of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

import medsight
from medsight.console import say
from medsight.evaluate.bootstrap import (
    metrics_with_ci,
    patient_resample_weights,
    percentile_interval,
)
from medsight.evaluate.classification.calibration import expected_calibration_error
from medsight.evaluate.classification.subgroups import subgroup_metrics
from medsight.evaluate.report.model_card import write_model_card
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import EvaluateOptions
from medsight.text.tasks.classify_contract import TextClassifyContract, read_contract
from medsight.text.tasks.classify_fit import MIN_MACRO_NOTES
from medsight.text.tasks.classify_predict import CALIBRATION_FILE
from medsight.text.tasks.classify_report import model_card, render_report
from medsight.text.tasks.classify_scores import ScoredNotes, external_scores, test_split_scores

SEED = 0
#: a class with at least this many evaluated notes and F1 or recall below `WEAK_F1` is flagged
WEAK_F1 = 0.5
MIN_FLAG_SUPPORT = 5


def scored_classes(y: np.ndarray, k: int) -> np.ndarray:
    """The classes a macro-F1 averages: those with `MIN_MACRO_NOTES`+ labelled notes.

    Falls back to every class present when none has that many (tiny sets).
    """
    support = np.bincount(y[y >= 0], minlength=k)
    counted = support >= MIN_MACRO_NOTES
    return counted if counted.any() else support > 0


def fast_macro_f1(y: np.ndarray, predicted: np.ndarray, counted: np.ndarray) -> float:
    """Mean F1 over the ``counted`` classes; NaN when one of them has no note in ``y``.

    A resample that lost a counted class is skipped rather than averaged over the classes
    it kept: dropping the rare classes (usually the hard ones) would bias the bootstrap
    upwards, past the point estimate.
    """
    k = counted.size
    cm = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    support = cm.sum(axis=1)[counted]
    if y.size == 0 or np.any(support == 0):
        return float("nan")
    tp = np.diag(cm)[counted].astype(np.float64)
    return float(np.mean(2 * tp / (support + cm.sum(axis=0)[counted])))


def macro_f1_intervals(
    scored: ScoredNotes, n_boot: int, primary: str, baseline: str | None
) -> dict[str, Any]:
    """Patient-bootstrap intervals of each model's macro-F1 per output and mean over outputs.

    One set of patient resamples serves every model and output, so the primary-minus-
    baseline difference is paired. The mean over outputs of a resample is skipped (NaN)
    when any output's macro-F1 is.
    """
    models = list(scored.probs)
    outputs = list(scored.y)
    predicted = {m: {o: scored.probs[m][o].argmax(axis=1) for o in outputs} for m in models}
    k = {o: scored.probs[models[0]][o].shape[1] for o in outputs}
    counted = {o: scored_classes(scored.y[o], k[o]) for o in outputs}
    # an output with one scorable class has a "macro-F1" that is that class's recall-like
    # F1 (e.g. an external set whose other labels the run never learnt): not in the mean
    averaged = [o for o in outputs if counted[o].sum() >= 2] or outputs

    def table(rows: np.ndarray) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {m: {} for m in models}
        for o in outputs:
            y = scored.y[o][rows]
            keep = y >= 0
            for m in models:
                out[m][o] = fast_macro_f1(y[keep], predicted[m][o][rows][keep], counted[o])
        for m in models:
            values = [out[m][o] for o in averaged]
            whole = values and all(np.isfinite(v) for v in values)
            out[m]["__mean__"] = float(np.mean(values)) if whole else float("nan")
        return out

    everything = np.arange(len(scored.subjects))
    point = table(everything)
    samples: dict[str, dict[str, list[float]]] = {m: {o: [] for o in point[m]} for m in models}
    differences: list[float] = []
    for block in patient_resample_weights(scored.subjects, n_boot, SEED):
        for weights in block.astype(np.int64):
            rows = np.repeat(everything, weights)
            values = table(rows)
            for m in models:
                for o, v in values[m].items():
                    samples[m][o].append(v)
            if baseline is not None:
                differences.append(values[primary]["__mean__"] - values[baseline]["__mean__"])
    intervals = {
        m: {o: percentile_interval(point[m][o], np.asarray(v)) for o, v in samples[m].items()}
        for m in models
    }
    difference = None
    if baseline is not None:
        difference = percentile_interval(
            point[primary]["__mean__"] - point[baseline]["__mean__"], np.asarray(differences)
        )
    return {
        "per_model": intervals,
        "difference": difference,
        "outputs_in_mean": averaged,
        "classes_scored": {
            o: [c for c, keep in zip(range(k[o]), counted[o], strict=True) if keep] for o in outputs
        },
    }


def _temperatures(run_dir: Path) -> dict[str, dict[str, float]]:
    path = run_dir / CALIBRATION_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["temperatures"]
        return {str(m): {str(o): float(t) for o, t in v.items()} for m, v in data.items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def _calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    return np.asarray(softmax(np.log(np.maximum(probs, 1e-12)) / temperature, axis=1))


def evaluate_output(
    scored: ScoredNotes,
    model: str,
    output: str,
    classes: list[str],
    temperature: float,
    n_boot: int,
) -> dict[str, Any] | None:
    """The metric table of one model and output (None: no labelled note for it)."""
    y_all = scored.y[output]
    keep = y_all >= 0
    if not keep.any():
        return None
    y, p = y_all[keep], scored.probs[model][output][keep]
    subjects = scored.subjects[keep]
    table = metrics_with_ci(y, p, subjects, classes, n_boot=n_boot, seed=SEED)
    per_class = {}
    weak = []
    for name in classes:
        entry = table["per_class"][name]
        per_class[name] = {
            "support": entry["support"],
            "precision": entry["ppv"],
            "recall": entry["sensitivity"],
            "f1": entry["f1"],
        }
        f1 = entry["f1"]["point"]
        recall = entry["sensitivity"]["point"]
        if entry["support"] >= MIN_FLAG_SUPPORT and (
            f1 is None or f1 < WEAK_F1 or recall is None or recall < WEAK_F1
        ):
            weak.append({"class": name, "support": entry["support"], "f1": f1, "recall": recall})
    calibrated = _calibrated(p, temperature)
    result: dict[str, Any] = {
        "n_notes": int(keep.sum()),
        "n_patients": table["n_patients"],
        "accuracy": table["overall"]["accuracy"],
        "per_class": per_class,
        "absent_classes": [c for c in classes if per_class[c]["support"] == 0],
        "weak_classes": weak,
        "confusion_matrix": table["confusion_matrix"],
        "calibration": {
            "temperature": temperature,
            "ece_before": expected_calibration_error(y, p),
            "ece_after": expected_calibration_error(y, calibrated),
        },
    }
    sex = scored.groups.get("sex")
    age = scored.groups.get("age")
    if sex is not None or age is not None:
        sex_k = (
            None
            if sex is None
            else [
                (str(s).upper()[:1] if s not in (None, "") else "")
                for s in np.asarray(sex, object)[keep]
            ]
        )
        age_k = (
            None
            if age is None
            else [
                float(a) if a not in (None, "") else float("nan")
                for a in np.asarray(age, object)[keep]
            ]
        )
        result["subgroups"] = subgroup_metrics(
            y, p, subjects, classes, sex=sex_k, age=age_k, n_boot=min(n_boot, 200), seed=SEED
        )
    return result


def evaluate_text_classify(run_dir: Path, options: EvaluateOptions) -> dict[str, Any]:
    """Evaluate every model of a text-classify run and write the report (module docstring).

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        InputError: the run lacks its contract or predictions; ``--data`` is unusable.
    """
    run_dir = Path(run_dir)
    contract: TextClassifyContract = read_contract(run_dir)
    if options.data is not None:
        scored = external_scores(run_dir, contract, Path(options.data))
        setting = "external"
    else:
        scored = test_split_scores(run_dir, contract)
        setting = "test split"
    temperatures = _temperatures(run_dir)
    primary = contract.model_name
    baseline = next((m for m, k in scored.kinds.items() if k == "baseline"), None)
    results: dict[str, dict[str, Any]] = {}
    for model in scored.probs:
        say(f"evaluating {model} ({scored.kinds[model]})")
        results[model] = {}
        for output in scored.y:
            entry = evaluate_output(
                scored,
                model,
                output,
                contract.outputs[output],
                temperatures.get(model, {}).get(output, 1.0),
                options.n_boot,
            )
            if entry is not None:
                results[model][output] = entry
            else:
                scored.notes.append(f"{output}: no labelled note in the evaluated set")
    intervals = macro_f1_intervals(scored, options.n_boot, primary, baseline)
    for model, per_output in results.items():
        for output, entry in per_output.items():
            entry["macro_f1"] = intervals["per_model"][model][output]
            classes = contract.outputs[output]
            entry["macro_f1_classes"] = [classes[c] for c in intervals["classes_scored"][output]]
    left_out = [o for o in scored.y if o not in intervals["outputs_in_mean"]]
    if left_out:
        scored.notes.append(
            f"{len(left_out)} output(s) with fewer than two scorable classes are not in the "
            f"mean macro-F1: {', '.join(left_out)}"
        )
    weak = [
        {"model": m, "output": o, **w}
        for m, per_output in results.items()
        for o, entry in per_output.items()
        for w in entry["weak_classes"]
    ]
    metrics: dict[str, Any] = {
        "task": "text-classify",
        "run": run_dir.name,
        "evaluated_on": scored.source,
        "setting": setting,
        "primary_model": primary,
        "baseline": baseline,
        "n_notes": int(len(scored.subjects)),
        "n_patients": int(np.unique(scored.subjects.astype(str)).size),
        "n_boot": int(options.n_boot),
        "ci_method": "percentile bootstrap, resampling patients with replacement",
        "macro_f1_definition": (
            f"mean F1 over the classes with {MIN_MACRO_NOTES}+ evaluated notes (all classes "
            "present when none has that many); rarer classes are in the per-class tables"
        ),
        "mean_macro_f1": {m: intervals["per_model"][m]["__mean__"] for m in scored.probs},
        "outputs_in_mean": intervals["outputs_in_mean"],
        "primary_minus_baseline": intervals["difference"],
        "kinds": scored.kinds,
        "outputs": results,
        "weak_classes": weak,
        "notes": scored.notes,
        "tuning_macro_f1": contract.tuning_macro_f1,
        "train_seconds": contract.train_seconds,
        "medsight": medsight.__version__,
    }
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_model_card(out / "model_card.md", model_card(contract, metrics))
    write_text_atomic(out / "report.html", render_report(contract, metrics))
    print_headline(metrics)
    say(f"report: {out / 'report.html'}")
    return metrics


def _ci(value: dict[str, Any] | None) -> str:
    if not value or value.get("point") is None:
        return "n/a"
    if value.get("low") is None:
        return f"{value['point']:.3f}"
    return f"{value['point']:.3f} ({value['low']:.3f}-{value['high']:.3f})"


def print_headline(metrics: dict[str, Any]) -> None:
    """The headline lines (always printed, even under --quiet)."""
    for model, mean in metrics["mean_macro_f1"].items():
        print(
            f"{model:>16} ({metrics['kinds'][model]}): macro-F1 {_ci(mean)} "
            f"(mean over {len(metrics['outputs_in_mean'])} output(s), {metrics['setting']})"
        )
    difference = metrics["primary_minus_baseline"]
    if difference is not None:
        print(
            f"macro-F1 {metrics['primary_model']} - {metrics['baseline']}: {_ci(difference)} "
            "(paired bootstrap)"
        )
    shown = [w for w in metrics["weak_classes"] if w["model"] == metrics["primary_model"]]
    for w in shown[:10]:
        f1 = "n/a" if w["f1"] is None else f"{w['f1']:.2f}"
        recall = "n/a" if w["recall"] is None else f"{w['recall']:.2f}"
        print(
            f"warning: {w['model']} {w['output']}: class {w['class']!r} F1 {f1}, recall "
            f"{recall} ({w['support']} notes)"
        )
    if len(shown) > 10:
        print(
            f"warning: {len(shown) - 10} more weak classes of {metrics['primary_model']}: "
            "see metrics.json"
        )
    for note in metrics["notes"]:
        print(f"note: {note}")
