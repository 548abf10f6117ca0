"""`medsight evaluate RUN` for an ehr-risk run: every model and baseline on the same patients.

Reads ``RUN/predictions.parquet`` (one row per sample and model: subject_id, prediction_time,
split, label, sex, age_years, model, kind, score) and ``RUN/model.json``. For every sequence
model and baseline, fitted on the TUNING split only (`risk_calibration.fit_risk_calibration`;
the primary model uses the run's own ``calibration.json``, the one prediction applies): the
calibration map, the decision threshold and the conformal quantile. On the HELD-OUT split,
with 95% patient-bootstrap intervals (resampling subjects, so a subject's several prediction
times stay together), all from the engine (`medsight.evaluate`):

- AUROC and AUPRC of the model's own score (ranking; a calibration map would only add ties),
- Brier score, sensitivity/specificity/PPV/NPV at the tuning threshold, decision curve, all of
  the calibrated probability (what a clinician acts on),
- ECE before and after calibration, reliability diagrams, conformal coverage and referral,
- AUROC by sex and age band; a subgroup whose whole AUROC interval lies below the overall
  AUROC's interval is flagged in the headline (a good average must not hide a failing group),
- the paired-bootstrap interval of the AUROC difference between the best sequence model and
  the best baseline, both chosen on TUNING AUROC (choosing on held-out would bias it).

With the run's encoded samples and weights present, the primary model is also explained:
global code importance over held-out samples and example timelines (highest risk, a true
positive, a false negative), via `medsight.ehr.explain`. Writes ``OUT/metrics.json``,
``OUT/report.html``, ``OUT/model_card.md`` and ``OUT/figures/*.png``; no subject identifier
appears in any of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import brier_score_loss

import medsight
from medsight.console import format_estimate, say
from medsight.ehr.data.batches import sorted_batches
from medsight.ehr.explain.global_importance import code_importance
from medsight.ehr.explain.integrated_gradients import EmbeddedModel
from medsight.ehr.tasks.risk_calibration import RiskCalibration, fit_risk_calibration
from medsight.ehr.tasks.risk_contract import read_contract
from medsight.ehr.tasks.risk_explain import ExplainableRun, find_samples, open_samples
from medsight.errors import InputError
from medsight.evaluate.bootstrap import bootstrap_ci, metrics_with_ci
from medsight.evaluate.classification.calibration import risk_calibration_error
from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.evaluate.classification.conformal import ConformalClassifier
from medsight.evaluate.classification.decision_curve import decision_curve
from medsight.evaluate.classification.operating_point import OperatingPoint
from medsight.evaluate.classification.paired_difference import paired_auroc_difference
from medsight.evaluate.classification.subgroups import subgroup_metrics
from medsight.evaluate.report.decision_curve_figure import decision_curve_figure
from medsight.evaluate.report.html_report import render_page
from medsight.evaluate.report.model_card import write_model_card
from medsight.evaluate.report.model_comparison_figure import (
    pr_comparison_figure,
    roc_comparison_figure,
)
from medsight.evaluate.report.risk_reliability_figure import risk_reliability_figure
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import EvaluateOptions

PREDICTIONS_FILE = "predictions.parquet"
TEMPLATE = "risk_report.html.j2"
SECTION_TEMPLATE = "risk_section.html.j2"
CLASS_NAMES = ["no event", "event"]
COLUMNS = (
    "subject_id",
    "prediction_time",
    "split",
    "label",
    "sex",
    "age_years",
    "model",
    "kind",
    "score",
)
SPLITS = ("train", "tuning", "held_out")
DEFAULT_TARGET_SENSITIVITY = 0.8
#: decision-curve thresholds: 1% to 60% risk (acting above 60% needs no model)
DECISION_THRESHOLDS = tuple(round(0.01 * k, 2) for k in range(1, 61))
#: held-out samples the global code importance is computed over (integrated gradients)
IMPORTANCE_SAMPLES = 256
IMPORTANCE_STEPS = 16
SEED = 0
INTENDED_USE = (
    "Research and method development: estimating a patient's risk of the labelled outcome "
    "from their coded record, as an aid to prioritising review. Not a medical device; not "
    "for diagnosis or treatment decisions."
)
LIMITATIONS = (
    "Evaluated on the run's held-out patients from the same source as its training data; "
    "performance at another hospital, coding system or time period is unknown.",
    "The risk is calibrated on the tuning split; a population with another event rate needs "
    "recalibration before its probabilities can be read as such.",
    "Attributions (integrated gradients) say which recorded events moved this model's score, "
    "not what causes the outcome; missing data are invisible to them.",
    "Read the confidence intervals, not the point estimates: held-out splits of EHR cohorts "
    "are often small in events.",
)


@dataclass(frozen=True)
class ModelScores:
    """One model's tuning and held-out scores, aligned to the shared held-out samples."""

    name: str
    kind: str
    tuning_y: np.ndarray
    tuning_score: np.ndarray
    held_score: np.ndarray


def _two(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=1)


def read_predictions(run_dir: Path) -> pl.DataFrame:
    """``RUN/predictions.parquet``, checked; ``label`` as 0/1, times as microseconds.

    Raises:
        InputError: missing (names the command), unreadable, a column missing, a score
            outside [0, 1], or no held-out or tuning rows.
    """
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        raise InputError(
            f"{path}: missing; train the run with `medsight train DATA --task ehr-risk "
            "--labels LABELS -o RUN`"
        )
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: lacks column(s) {', '.join(missing)}")
    frame = cast(pl.DataFrame, pl.from_arrow(table.select(list(COLUMNS))))
    scores = frame["score"].cast(pl.Float64).to_numpy()
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1))
    if bad.size:
        raise InputError(f"{path}: row {int(bad[0]) + 1}: score is not a probability in [0, 1]")
    for split in ("tuning", "held_out"):
        if not (frame["split"] == split).any():
            raise InputError(f"{path}: no {split} rows; evaluation needs both splits")
    # unlabelled samples (label null: prediction-only times) have nothing to score against
    return frame.filter(pl.col("label").is_not_null()).with_columns(
        pl.col("label").cast(pl.Boolean).cast(pl.Int64),
        pl.col("score").cast(pl.Float64),
        pl.col("age_years").cast(pl.Float64),
        pl.col("subject_id").cast(pl.Int64),
        pl.col("prediction_time").cast(pl.Datetime("us")).dt.epoch("us").alias("time_us"),
        pl.col("sex").cast(pl.String),
    )


def _sex_text(values: list[Any]) -> list[str]:
    """Sex as the engine's subgroups read it: F, M or "" (unknown), from codes 1/2 or text."""
    out = []
    for value in values:
        text = "" if value is None else str(value).strip().upper()
        text = {"1": "F", "2": "M"}.get(text, text)
        out.append(text if text in ("F", "M") else "")
    return out


def _aligned(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[ModelScores], dict[str, Any]]:
    """Held-out samples every model scored, and each model's scores on them (same order)."""
    key = ["subject_id", "time_us"]
    models = list(dict.fromkeys(frame["model"].to_list()))
    held = frame.filter(pl.col("split") == "held_out")
    per_model = {
        m: held.filter(pl.col("model") == m).unique(subset=key, keep="first", maintain_order=True)
        for m in models
    }
    common = None
    for part in per_model.values():
        keys = part.select(key)
        common = keys if common is None else common.join(keys, on=key, how="inner")
    assert common is not None
    base = (
        per_model[models[0]]
        .join(common, on=key, how="semi")
        .sort(key)
        .select([*key, "label", "sex", "age_years"])
    )
    scored = []
    for name in models:
        rows = base.select(key).join(
            per_model[name].select([*key, "score"]), on=key, how="left", maintain_order="left"
        )
        tuning = frame.filter((pl.col("split") == "tuning") & (pl.col("model") == name))
        kinds = per_model[name]["kind"].to_list()
        scored.append(
            ModelScores(
                name=str(name),
                kind=str(kinds[0]) if kinds else "unknown",
                tuning_y=tuning["label"].to_numpy().astype(np.int64),
                tuning_score=tuning["score"].to_numpy().astype(np.float64),
                held_score=rows["score"].to_numpy().astype(np.float64),
            )
        )
    sizes = {m: int(p.height) for m, p in per_model.items()}
    alignment = {
        "n_common_held_out_samples": int(base.height),
        "held_out_samples_per_model": sizes,
        "same_patients": all(n == base.height for n in sizes.values()),
    }
    return base, scored, alignment


def _auroc(y: np.ndarray, score: np.ndarray) -> float | None:
    value = float(ranking_metrics(y.astype(bool), score, np.ones((1, y.size)))[0][0])
    return value if np.isfinite(value) else None


def _calibration(
    model: ModelScores, run_calibration: RiskCalibration | None, options: EvaluateOptions
) -> tuple[RiskCalibration, str]:
    target = options.sensitivity or DEFAULT_TARGET_SENSITIVITY
    if (
        run_calibration is not None
        and options.sensitivity is None
        and abs(run_calibration.coverage - options.coverage) < 1e-9
    ):
        return run_calibration, "calibration.json of the run (fitted on tuning at training)"
    fitted = fit_risk_calibration(
        model.tuning_score, model.tuning_y, target_sensitivity=target, coverage=options.coverage
    )
    return fitted, "fitted here on the tuning split"


def evaluate_model(
    model: ModelScores,
    y: np.ndarray,
    subjects: np.ndarray,
    sex: list[str],
    age: np.ndarray,
    calibration: RiskCalibration,
    calibration_source: str,
    n_boot: int,
) -> dict[str, Any]:
    """Everything reported for one model on the held-out samples (see the module docstring)."""
    raw, tuning_raw = model.held_score, model.tuning_score
    calibrated = calibration.calibrate(raw)
    tuning_calibrated = calibration.calibrate(tuning_raw)
    table = metrics_with_ci(y, _two(raw), subjects, CLASS_NAMES, n_boot=n_boot, seed=SEED)
    event = table["per_class"]["event"]
    brier = bootstrap_ci(brier_score_loss, y, calibrated, subjects, n_boot=n_boot, seed=SEED)
    point = OperatingPoint(
        [1], method="sensitivity", target_sensitivity=calibration.target_sensitivity
    ).fit(_two(tuning_calibrated), model.tuning_y)
    operating = point.evaluate(_two(calibrated), y, subjects, CLASS_NAMES, n_boot=n_boot, seed=SEED)
    try:
        conformal = ConformalClassifier(alpha=1 - calibration.coverage).fit(
            _two(tuning_calibrated), model.tuning_y
        )
        conformal_report: dict[str, Any] = conformal.report(_two(calibrated), y, CLASS_NAMES)
    except ValueError as exc:
        conformal_report = {"reason": str(exc)}
    subgroups = subgroup_metrics(
        y, _two(raw), subjects, CLASS_NAMES, sex=sex, age=age, n_boot=n_boot, seed=SEED
    )
    # flagged: the subgroup's whole interval lies below the overall interval (both 95%); a
    # looser rule (below the overall point) flags chance dips in small groups too often
    overall = event["roc_auc"]
    flagged = []
    for attribute in ("by_sex", "by_age"):
        for group, entry in (subgroups.get(attribute) or {}).items():
            metrics = entry.get("metrics")
            auc = metrics["per_class"]["event"]["roc_auc"] if metrics else None
            entry["roc_auc"] = auc
            entry["pr_auc"] = metrics["per_class"]["event"]["pr_auc"] if metrics else None
            entry["below_overall"] = bool(
                auc is not None
                and auc.get("high") is not None
                and overall.get("low") is not None
                and auc["high"] < overall["low"]
            )
            if entry["below_overall"]:
                flagged.append(
                    {
                        "attribute": attribute[3:],
                        "group": group,
                        "roc_auc": auc,
                        "overall": overall,
                    }
                )
    return {
        "name": model.name,
        "kind": model.kind,
        "tuning": {
            "n_samples": int(model.tuning_y.size),
            "n_events": int(model.tuning_y.sum()),
            "roc_auc": _auroc(model.tuning_y, tuning_raw),
        },
        "n_cases": table["n_cases"],
        "n_patients": table["n_patients"],
        "roc_auc": event["roc_auc"],
        "pr_auc": event["pr_auc"],
        "brier": brier,
        "brier_uncalibrated": float(brier_score_loss(y, raw)),
        "calibration": {
            "source": calibration_source,
            "method": calibration.method,
            "fit": calibration.model_dump(exclude={"isotonic_x", "isotonic_y"}),
            "ece_tuning_before": calibration.ece_before,
            "ece_tuning_after": calibration.ece_after,
            "ece_before": risk_calibration_error(y, raw),
            "ece_after": risk_calibration_error(y, calibrated),
        },
        "operating_point": {
            "threshold": operating["threshold"],
            "tuning_threshold_matches": bool(
                abs(operating["threshold"] - calibration.threshold) < 1e-9
            ),
            "target_sensitivity": operating["target_sensitivity"],
            "tuning": operating["validation"],
            "held_out": operating["test"],
        },
        "conformal": conformal_report,
        "subgroups": subgroups,
        "subgroups_below_overall": flagged,
        "decision_curve": decision_curve(
            y, calibrated, DECISION_THRESHOLDS, patient_ids=subjects, n_boot=n_boot, seed=SEED
        ),
    }


def _best(results: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    candidates = [r for r in results if r["kind"] == kind and r["tuning"]["roc_auc"] is not None]
    return max(candidates, key=lambda r: r["tuning"]["roc_auc"]) if candidates else None


def _data_summary(frame: pl.DataFrame, primary: str) -> list[dict[str, Any]]:
    rows = []
    one = frame.filter(pl.col("model") == primary)
    for split in SPLITS:
        part = one.filter(pl.col("split") == split)
        labels = part["label"].to_numpy()
        rows.append(
            {
                "split": split,
                "samples": int(part.height),
                "subjects": int(part["subject_id"].n_unique()),
                "with event": int(labels.sum()),
                "event rate": float(labels.mean()) if part.height else None,
            }
        )
    return rows


def _ci_text(ci: dict[str, Any] | None) -> str:
    if not ci or ci.get("point") is None:
        return "n/a"
    if ci.get("low") is None:
        return f"{ci['point']:.3f}"
    return f"{ci['point']:.3f} ({ci['low']:.3f} to {ci['high']:.3f})"


def _comparison_sentence(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "No sequence model and baseline to compare (the run trained only one kind)."
    diff = comparison["difference"]
    a, b = comparison["sequence_model"], comparison["baseline"]
    if diff["point"] is None:
        return f"The AUROC difference between {a} and {b} is undefined on the held-out split."
    text = (
        f"{a} (best sequence model on tuning) minus {b} (best baseline on tuning): AUROC "
        f"difference {_ci_text(diff)} on the same held-out patients (paired bootstrap). "
    )
    if diff["low"] is not None and diff["low"] > 0:
        return text + f"{a} beat the baseline; the interval excludes no difference."
    if diff["high"] is not None and diff["high"] < 0:
        return text + f"The baseline {b} beat the sequence model."
    return text + "The interval includes 0: no reliable difference on these patients."


def useful_ranges(curve: dict[str, Any]) -> str:
    """The threshold ranges where a decision curve beats treat-all and treat-none, as text."""
    ranges: list[str] = []
    start = previous = None
    for t, useful in zip(curve["thresholds"], curve["useful"], strict=True):
        if useful and start is None:
            start = t
        if not useful and start is not None:
            ranges.append(f"{start:.0%}-{previous:.0%}" if previous != start else f"{start:.0%}")
            start = None
        previous = t
    if start is not None:
        ranges.append(f"{start:.0%}-{previous:.0%}" if previous != start else f"{start:.0%}")
    return ", ".join(ranges) if ranges else "none in the range shown"


def _explanations(
    run_dir: Path, base: pl.DataFrame, primary: dict[str, Any], primary_scores: np.ndarray
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Global code importance and example timelines of the primary model, where possible."""
    try:
        run = ExplainableRun.load(run_dir)
        found = find_samples(run_dir)
        if found is None:
            raise InputError(f"{run_dir}: keeps no encoded samples")
        samples = open_samples(found)
    except InputError as exc:
        return {"available": False, "reason": str(exc)}, []
    subject = np.asarray(samples.subject_id, dtype=np.int64)
    when = np.asarray(samples.prediction_time).astype("datetime64[us]").astype(np.int64)
    index_of = {(int(s), int(t)): i for i, (s, t) in enumerate(zip(subject, when, strict=True))}
    times = base["time_us"].to_numpy().astype(np.int64)
    positions = [
        index_of.get((int(s), int(t)), -1)
        for s, t in zip(base["subject_id"].to_numpy(), times, strict=True)
    ]
    sample_index = np.asarray(positions, dtype=np.int64)
    known = sample_index >= 0
    if not known.any():
        reason = "the run's encoded samples hold none of the held-out predictions"
        return {"available": False, "reason": reason}, []
    rng = np.random.default_rng(SEED)
    chosen = np.flatnonzero(known)
    if chosen.size > IMPORTANCE_SAMPLES:
        chosen = np.sort(rng.choice(chosen, IMPORTANCE_SAMPLES, replace=False))
    batches = (batch for _, batch in sorted_batches(samples, sample_index[chosen], 64))
    importance = code_importance(
        cast(EmbeddedModel, run.model),
        batches,
        run.codes,
        run.catalogue,
        steps=IMPORTANCE_STEPS,
    )
    y = base["label"].to_numpy().astype(np.int64)
    threshold = primary["operating_point"]["threshold"]
    calibrated = run.calibration.calibrate(primary_scores) if run.calibration else primary_scores
    picks: list[tuple[str, int]] = []
    order = np.argsort(-primary_scores)
    for i in order:
        if known[i]:
            picks.append(("highest risk", int(i)))
            break
    for i in order:
        if known[i] and y[i] == 1 and calibrated[i] >= threshold and all(i != p for _, p in picks):
            picks.append(("true positive", int(i)))
            break
    for i in order:  # the missed event the model scored highest: nearest to being caught
        if known[i] and y[i] == 1 and calibrated[i] < threshold:
            picks.append(("false negative", int(i)))
            break
    timelines = []
    for number, (why, i) in enumerate(picks, start=1):
        record, png = run.explain(samples, int(sample_index[i]))
        outcome = "had the event" if y[i] == 1 else "no event"
        prob = record["calibrated_probability"]
        timelines.append(
            {
                "png": png,
                "caption": f"Example {number} ({why}): {outcome}; risk {record['risk']:.3f}"
                + (f", calibrated probability {prob:.1%}" if prob is not None else "")
                + f"; {record['n_events']} events in the model's window.",
                "why": why,
                "record": {k: v for k, v in record.items() if k not in ("prediction_time",)},
            }
        )
    return {"available": True, "model": run.model_name, "global_importance": importance}, timelines


def _model_card(
    contract: dict[str, Any],
    primary: dict[str, Any],
    results: list[dict[str, Any]],
    comparison: dict[str, Any] | None,
    data_summary: list[dict[str, Any]],
    label_definition: str,
) -> dict[str, Any]:
    """The model card in the engine's structure (``model_card.model_card_markdown``)."""
    metric_rows = [["metric (held-out, 95% CI, patient bootstrap)", "value"]]
    metric_rows += [
        ["AUROC", _ci_text(primary["roc_auc"])],
        ["AUPRC", _ci_text(primary["pr_auc"])],
        ["Brier (calibrated)", _ci_text(primary["brier"])],
    ]
    held = primary["operating_point"]["held_out"]
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        metric_rows.append(
            [
                f"{name} at threshold {primary['operating_point']['threshold']:.3f}",
                _ci_text(held[name]),
            ]
        )
    cal = primary["calibration"]
    side = [["model", "kind", "tuning AUROC", "held-out AUROC", "AUPRC", "Brier"]]
    for r in results:
        side.append(
            [
                r["name"],
                r["kind"],
                "n/a" if r["tuning"]["roc_auc"] is None else f"{r['tuning']['roc_auc']:.3f}",
                _ci_text(r["roc_auc"]),
                _ci_text(r["pr_auc"]),
                _ci_text(r["brier"]),
            ]
        )
    subgroup_rows = [["subgroup", "samples", "AUROC (95% CI)", "note"]]
    for attribute in ("by_sex", "by_age"):
        for group, entry in (primary["subgroups"].get(attribute) or {}).items():
            note = entry.get("reason") or ""
            if entry.get("below_overall"):
                note = "AUROC interval below the overall AUROC's interval"
            subgroup_rows.append(
                [
                    f"{attribute[3:]} {group}",
                    str(entry["n_cases"]),
                    _ci_text(entry["roc_auc"]),
                    note,
                ]
            )
    conformal = primary["conformal"]
    conformal_text = (
        f"Conformal sets at {conformal['target_coverage']:.0%} target coverage covered "
        f"{conformal['coverage']:.1%} of held-out samples; {conformal['referred_share']:.1%} "
        "would be referred (set not a single outcome)."
        if "coverage" in conformal
        else f"No conformal referral: {conformal.get('reason', 'not fitted')}."
    )
    facts = {
        "task": contract.get("task"),
        "primary model": contract.get("model_name"),
        "models": ", ".join(str(m) for m in contract.get("models", [])),
        "baselines": ", ".join(str(m) for m in contract.get("baselines", [])),
        **{k: v for k, v in contract.items() if k.startswith("version") or k == "versions"},
    }
    return {
        "title": f"Model card: {primary['name']} (EHR risk)",
        "sections": [
            {"title": "Intended use", "paragraphs": [INTENDED_USE], "table": []},
            {
                "title": "Training data and outcome",
                "paragraphs": [f"Outcome (label definition): {label_definition}"],
                "table": [["split", "samples", "subjects", "with event"]]
                + [
                    [str(r["split"]), str(r["samples"]), str(r["subjects"]), str(r["with event"])]
                    for r in data_summary
                ],
            },
            {
                "title": "Evaluation on the held-out split",
                "paragraphs": [
                    f"Calibration ({cal['method']}, {cal['source']}): ECE "
                    f"{cal['ece_before']:.3f} before and {cal['ece_after']:.3f} after on "
                    "held-out samples. " + conformal_text,
                    _comparison_sentence(comparison),
                ],
                "table": metric_rows,
            },
            {"title": "Every model on the same held-out patients", "paragraphs": [], "table": side},
            {"title": "Subgroups", "paragraphs": [], "table": subgroup_rows},
            {"title": "Limitations", "paragraphs": list(LIMITATIONS), "table": []},
            {
                "title": "Reproducibility",
                "paragraphs": [],
                "table": [["item", "value"]] + [[k, str(v)] for k, v in facts.items()],
            },
        ],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "png"}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: an outcome's conformal coverage this far below the target is flagged in the headline
COVERAGE_GAP = 0.10


def conformal_coverage_gaps(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outcomes whose held-out conformal coverage falls well below the target, per model.

    Split-conformal sets guarantee the coverage on average over patients, not per outcome:
    with a rare event the sets can cover nearly every patient without the event and only
    half of those with it. A referral rule that misses half the events must not hide behind
    its overall coverage, so each such outcome is flagged at the top of the report.
    """
    gaps = []
    for r in results:
        conformal = r.get("conformal") or {}
        target = conformal.get("target_coverage")
        for outcome, coverage in (conformal.get("per_class_coverage") or {}).items():
            if target is not None and coverage is not None and coverage < target - COVERAGE_GAP:
                gaps.append(
                    {"model": r["name"], "outcome": outcome, "coverage": coverage, "target": target}
                )
    return gaps


def evaluate_risk_run(run_dir: Path, options: EvaluateOptions, section_title: str = "") -> str:
    """Evaluate every model of an ehr-risk run and write the report (see the module docstring).

    Returns:
        The report's body as an HTML section headed ``section_title`` (the demo adds it to
        its report).

    Raises:
        InputError: ``options.data`` was given (external evaluation is not supported yet),
            or the run lacks its predictions/contract, or a split lacks an outcome.
    """
    if options.data is not None:
        raise InputError(
            f"{options.data}: --data is not supported for ehr-risk yet; the run is evaluated "
            "on its own held-out split"
        )
    run_dir = Path(run_dir)
    contract = read_contract(run_dir).model_dump()
    frame = read_predictions(run_dir)
    base, scored, alignment = _aligned(frame)
    y = base["label"].to_numpy().astype(np.int64)
    if y.sum() == 0 or y.sum() == y.size:
        raise InputError(
            f"{run_dir / PREDICTIONS_FILE}: the held-out split has {int(y.sum())} of {y.size} "
            "samples with the event; AUROC and calibration need both outcomes"
        )
    subjects = base["subject_id"].to_numpy()
    sex = _sex_text(base["sex"].to_list())
    age = base["age_years"].fill_null(float("nan")).to_numpy().astype(np.float64)
    primary_name = str(contract.get("model_name") or scored[0].name)
    try:
        run_calibration: RiskCalibration | None = RiskCalibration.load(run_dir)
    except InputError:
        run_calibration = None
    results = []
    calibrated: dict[str, np.ndarray] = {}
    for model in scored:
        say(f"evaluating {model.name} ({model.kind})")
        calibration, source = _calibration(
            model, run_calibration if model.name == primary_name else None, options
        )
        results.append(
            evaluate_model(model, y, subjects, sex, age, calibration, source, options.n_boot)
        )
        calibrated[model.name] = calibration.calibrate(model.held_score)
    by_name = {r["name"]: r for r in results}
    primary = by_name.get(primary_name, results[0])
    best_sequence, best_baseline = _best(results, "sequence"), _best(results, "baseline")
    comparison = None
    if best_sequence and best_baseline:
        scores = {m.name: m.held_score for m in scored}
        comparison = {
            "sequence_model": best_sequence["name"],
            "baseline": best_baseline["name"],
            "chosen_on": "tuning AUROC",
            **paired_auroc_difference(
                y,
                scores[best_sequence["name"]],
                scores[best_baseline["name"]],
                subjects,
                n_boot=options.n_boot,
                seed=SEED,
            ),
        }
    label_definition = str(contract.get("label_definition") or "not recorded in model.json")
    data_summary = _data_summary(frame, primary["name"])
    primary_scores = next(m.held_score for m in scored if m.name == primary["name"])
    explanations, timelines = _explanations(run_dir, base, primary, primary_scores)
    flagged = [{"model": r["name"], **f} for r in results for f in r["subgroups_below_overall"]]
    coverage_gaps = conformal_coverage_gaps(results)
    metrics = {
        "task": "ehr-risk",
        "run": run_dir.name,
        "primary_model": primary["name"],
        "label_definition": label_definition,
        "data_summary": data_summary,
        "held_out_alignment": alignment,
        "n_boot": int(options.n_boot),
        "ci_method": "percentile bootstrap, resampling subjects with replacement",
        "models": results,
        "best_sequence_model": best_sequence["name"] if best_sequence else None,
        "best_baseline": best_baseline["name"] if best_baseline else None,
        "auroc_difference": comparison,
        "subgroups_below_overall": flagged,
        "conformal_coverage_gaps": coverage_gaps,
        "explanations": explanations,
        "example_timelines": [{"why": t["why"], **t["record"]} for t in timelines],
    }
    out = Path(options.out)
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    held_scores = {m.name: m.held_score for m in scored}
    figures = {
        "roc": roc_comparison_figure(y, held_scores),
        "pr": pr_comparison_figure(y, held_scores),
        "decision_curve": decision_curve_figure(
            {r["name"]: r["decision_curve"] for r in results}, title="Decision curve, held-out"
        ),
    }
    for model in scored:
        figures[f"reliability_{model.name}"] = risk_reliability_figure(
            y,
            {"as trained": model.held_score, "calibrated": calibrated[model.name]},
            title=f"Reliability, {model.name} (held-out)",
        )
    for name, png in figures.items():
        (figures_dir / f"{name}.png").write_bytes(png)
    for number, timeline in enumerate(timelines, start=1):
        (figures_dir / f"timeline_{number}.png").write_bytes(timeline["png"])
    write_text_atomic(out / "metrics.json", json.dumps(_jsonable(metrics), indent=2) + "\n")
    card = _model_card(contract, primary, results, comparison, data_summary, label_definition)
    write_model_card(out / "model_card.md", card)
    context = {
        "title": f"medsight EHR risk evaluation: {run_dir.name}",
        "generated_by": f"medsight {medsight.__version__}",
        "metrics": metrics,
        "primary": primary,
        "results": results,
        "comparison": comparison,
        "comparison_sentence": _comparison_sentence(comparison),
        "flagged": flagged,
        "coverage_gaps": coverage_gaps,
        "useful_ranges": {r["name"]: useful_ranges(r["decision_curve"]) for r in results},
        "figures": figures,
        "reliability": [(m.name, figures[f"reliability_{m.name}"]) for m in scored],
        "timelines": timelines,
        "model_card": card,
    }
    page = render_page(TEMPLATE, {**context, "section_title": ""})
    write_text_atomic(out / "report.html", page)
    print_headline(metrics)
    say(f"report: {out / 'report.html'}")
    return render_page(SECTION_TEMPLATE, {**context, "section_title": section_title})


def print_headline(metrics: dict[str, Any]) -> None:
    """The headline lines (always printed, even under --quiet)."""
    for r in metrics["models"]:
        print(
            f"{r['name']:>12} ({r['kind']}): held-out AUROC {format_estimate(r['roc_auc'])}  "
            f"AUPRC {format_estimate(r['pr_auc'])}"
        )
    comparison = metrics["auroc_difference"]
    if comparison:
        print(
            f"AUROC {comparison['sequence_model']} - {comparison['baseline']}: "
            f"{format_estimate(comparison['difference'])} (paired bootstrap)"
        )
    for f in metrics["subgroups_below_overall"]:
        print(
            f"warning: {f['model']} AUROC in {f['attribute']} {f['group']} "
            f"{format_estimate(f['roc_auc'])} lies below the overall "
            f"{format_estimate(f['overall'])}"
        )
