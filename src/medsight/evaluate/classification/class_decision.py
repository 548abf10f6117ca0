"""Per-class operating points of a k-class model: the argmax of class-weighted probabilities.

A plain argmax can silently never call a class: an under-trained 3-class lung model with a
macro AUC of 0.93 called no case benign, and macro AUC did not show it. The rule here
predicts ``argmax_k w_k p_k`` (a prior-shift, or cost-sensitive, rule); the weights are
fitted on the *validation* split to maximise balanced accuracy (the mean of the per-class
sensitivities), ties going to the larger smallest per-class sensitivity and then to weights
nearer 1 (the least departure from the model's own argmax). The test split is then scored at
that rule with patient-bootstrap intervals, so a class the model fails is a number in the
report, not a hidden one.

Written here because scikit-learn's threshold tuning (``TunedThresholdClassifierCV``) is for
binary problems only, and one-vs-rest thresholds can call a case two classes at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsight.errors import InputError
from medsight.evaluate.bootstrap import metrics_with_ci
from medsight.runs.atomic import write_text_atomic

#: log-weights searched per class (natural log): weights from 1/e^2 to e^2
LOG_WEIGHT_GRID = np.round(np.arange(-2.0, 2.0001, 0.1), 10)
SWEEPS = 4
#: the rule saved beside a run's model (`medsight predict` applies it)
DECISION_FILE = "decision.json"


def weighted_predictions(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The class each case is called under ``weights`` (``argmax_k w_k p_k``)."""
    return np.asarray(np.argmax(np.asarray(probs, dtype=np.float64) * weights, axis=1))


def weighted_probabilities(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``w_k p_k`` renormalised: rows whose argmax is the rule's call (not calibrated)."""
    scaled = np.asarray(probs, dtype=np.float64) * weights
    return scaled / np.maximum(scaled.sum(axis=1, keepdims=True), 1e-12)


def per_class_sensitivity(y: np.ndarray, called: np.ndarray, k: int) -> np.ndarray:
    """Sensitivity (recall) of each class; NaN for a class without cases."""
    out = np.full(k, np.nan)
    for c in range(k):
        members = y == c
        if members.any():
            out[c] = float((called[members] == c).mean())
    return out


def _key(y: np.ndarray, probs: np.ndarray, log_w: np.ndarray) -> tuple[float, float, float]:
    recall = per_class_sensitivity(y, weighted_predictions(probs, np.exp(log_w)), probs.shape[1])
    present = recall[~np.isnan(recall)]
    return (
        round(float(present.mean()), 9),
        round(float(present.min()), 9),
        -round(float(np.abs(log_w).sum()), 9),
    )


def fit_class_weights(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights (class 0's fixed at 1) maximising validation balanced accuracy.

    Coordinate ascent over `LOG_WEIGHT_GRID`, one class at a time, `SWEEPS` passes: the same
    inputs give the same weights.

    Raises:
        ValueError: ``probs`` is not ``(n, k)`` with ``k >= 2`` or ``y`` does not match it.
    """
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] < 2 or labels.shape != (p.shape[0],) or p.shape[0] == 0:
        raise ValueError(
            f"need probabilities (n, k>=2) and n labels, got {p.shape}, {labels.shape}"
        )
    log_w = np.zeros(p.shape[1])
    best = _key(labels, p, log_w)
    for _ in range(SWEEPS):
        changed = False
        for c in range(1, p.shape[1]):
            for value in LOG_WEIGHT_GRID:
                trial = log_w.copy()
                trial[c] = value
                key = _key(labels, p, trial)
                if key > best:
                    best, log_w, changed = key, trial, True
        if not changed:
            break
    return np.exp(log_w)


def evaluate_class_weights(
    val_probs: np.ndarray,
    val_y: np.ndarray,
    test_probs: np.ndarray,
    test_y: np.ndarray,
    test_patients: Sequence[Any],
    class_names: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the rule on validation, score it on test (95% CIs resampling patients).

    Returns:
        ``{"method", "weights": {class: w}, "validation": {"balanced_accuracy",
        "sensitivity": {class: float}}, "test": {"balanced_accuracy": CI, "accuracy": CI,
        "per_class": {class: {"sensitivity": CI, "specificity": CI, "ppv": CI}}},
        "argmax_test_sensitivity": {class: float}}`` (the last: what the plain argmax gave).
    """
    names = list(class_names)
    weights = fit_class_weights(val_probs, val_y)
    val_recall = per_class_sensitivity(
        np.asarray(val_y), weighted_predictions(val_probs, weights), len(names)
    )
    table = metrics_with_ci(
        np.asarray(test_y),
        weighted_probabilities(test_probs, weights),
        test_patients,
        names,
        n_boot,
        seed,
    )
    argmax_recall = per_class_sensitivity(
        np.asarray(test_y), np.asarray(test_probs).argmax(1), len(names)
    )

    def number(value: float) -> float | None:
        return None if np.isnan(value) else float(value)

    return {
        "method": "argmax of class-weighted probabilities, weights maximising validation "
        "balanced accuracy",
        "weights": {n: float(w) for n, w in zip(names, weights, strict=True)},
        "validation": {
            "balanced_accuracy": number(float(np.nanmean(val_recall))),
            "sensitivity": {n: number(r) for n, r in zip(names, val_recall, strict=True)},
        },
        "test": {
            "accuracy": table["overall"]["accuracy"],
            "balanced_accuracy": table["overall"]["balanced_accuracy"],
            "per_class": {
                n: {m: table["per_class"][n][m] for m in ("sensitivity", "specificity", "ppv")}
                for n in names
            },
        },
        "argmax_test_sensitivity": {
            n: number(r) for n, r in zip(names, argmax_recall, strict=True)
        },
    }


def write_decision_rule(run_dir: Path, class_names: Sequence[str], weights: dict) -> Path:
    """Save the fitted weights beside the run's model (``RUN/decision.json``)."""
    record = {"class_names": list(class_names), "weights": [weights[n] for n in class_names]}
    return write_text_atomic(run_dir / DECISION_FILE, json.dumps(record, indent=2))


def read_decision_weights(run_dir: Path, class_names: Sequence[str]) -> np.ndarray | None:
    """The saved weights in ``class_names`` order, or None when the run has no rule yet (it
    has not been evaluated).

    Raises:
        InputError: the file is not a rule for these classes with positive, finite weights.
    """
    path = run_dir / DECISION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        weights = np.asarray(record["weights"], dtype=np.float64)
        names = list(record["class_names"])
    except (ValueError, KeyError, TypeError, OSError):
        raise InputError(f"{path}: not a decision rule; rerun `medsight evaluate`") from None
    if names != list(class_names) or weights.shape != (len(class_names),):
        raise InputError(
            f"{path}: the rule is for classes {names}, the model has {list(class_names)}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise InputError(f"{path}: weights must be positive numbers; rerun `medsight evaluate`")
    return weights
