"""Decision curves: the net benefit of acting on a risk score, over a range of thresholds.

A clinician who would act (treat, refer, screen) on a patient whose risk is at least ``t``
weighs a missed event against an unnecessary action as ``(1 - t) : t``. The net benefit of
acting on the score at threshold ``t`` is (Vickers & Elkin 2006, "Decision curve analysis")

    NB(t) = TP(t) / n - FP(t) / n * t / (1 - t)

where a case is acted on when its risk is ``>= t``. Two references go with it: *treat all*
(everyone acted on: ``prevalence - (1 - prevalence) * t / (1 - t)``) and *treat none*
(``0``). A score is useful at ``t`` only where its curve lies above both. Net benefit reads
the risk as a probability, so it is meaningful only for calibrated risks.

Intervals (optional) are percentile-bootstrap intervals that resample patients
(``bootstrap.patient_resample_weights``): a resample is the cases with integer
multiplicities, so TP and FP of every threshold are weighted sums, computed for a block of
resamples at once with one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import patient_resample_weights, percentile_interval

#: 0.01, 0.02, ..., 0.99
DEFAULT_THRESHOLDS = tuple(round(0.01 * k, 2) for k in range(1, 100))


def _checked(
    y_true: np.ndarray, risk: np.ndarray, thresholds: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.float64).ravel()
    p = np.asarray(risk, dtype=np.float64).ravel()
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need one risk per outcome, got {y.shape} and {p.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("outcomes must be 0 or 1")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("risks must be finite probabilities in [0, 1]")
    if t.size == 0 or np.any(t <= 0) or np.any(t >= 1):
        raise ValueError("thresholds must lie strictly between 0 and 1")
    return y, p, t


def net_benefit(
    y_true: np.ndarray,
    risk: np.ndarray,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Net benefit of the score and of treating everyone, for many case-weight vectors.

    Args:
        y_true: 0/1 outcome of each case, shape ``(n_cases,)``.
        risk: Predicted probability of the event, shape ``(n_cases,)``.
        thresholds: Threshold probabilities, each in ``(0, 1)``.
        weights: Non-negative case weights, shape ``(n_rows, n_cases)`` (bootstrap
            multiplicities); ``None`` means every case once (one row).

    Returns:
        ``(model, treat_all)``, each of shape ``(n_rows, n_thresholds)``.

    Raises:
        ValueError: If outcomes are not 0/1, risks not in [0, 1], thresholds not in (0, 1)
            or the shapes disagree.
    """
    y, p, t = _checked(y_true, risk, thresholds)
    w = np.ones((1, y.size)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != y.size or np.any(w < 0):
        raise ValueError(f"weights must be non-negative with shape (rows, {y.size})")
    acted = (p[:, None] >= t[None, :]).astype(np.float64)
    tp = w @ (acted * y[:, None])
    fp = w @ (acted * (1 - y)[:, None])
    n = w.sum(axis=1, keepdims=True)
    odds = t / (1 - t)
    positives = (w @ y)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        model = (tp - fp * odds) / n
        treat_all = (positives - (n - positives) * odds) / n
    return model, treat_all


def decision_curve(
    y_true: np.ndarray,
    risk: np.ndarray,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    patient_ids: np.ndarray | Sequence[Any] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The decision curve of one calibrated risk score, with optional bootstrap intervals.

    Args:
        y_true: 0/1 outcome of each case, shape ``(n_cases,)``.
        risk: Calibrated probability of the event, shape ``(n_cases,)``.
        thresholds: Threshold probabilities, each in ``(0, 1)``.
        patient_ids: One patient ID per case; needed for intervals (resampling draws
            patients, so a patient's several prediction times stay together).
        n_boot: Bootstrap resamples; 0 gives point estimates only.
        seed: Seed of the resampling generator.
        alpha: One minus the intervals' nominal coverage.

    Returns:
        A JSON-serialisable dict ``{"thresholds": [t], "prevalence", "n_cases",
        "net_benefit": [float], "treat_all": [float], "treat_none": [0.0, ...],
        "useful": [bool] (above both references), "ci": None or {"low": [..], "high":
        [..], "n_boot", "alpha"}}``.

    Raises:
        ValueError: As ``net_benefit``; or intervals were asked for without patient IDs.
    """
    y, p, t = _checked(y_true, risk, thresholds)
    model, treat_all = net_benefit(y, p, t)
    ci = None
    if n_boot:
        if patient_ids is None:
            raise ValueError("decision-curve intervals need one patient ID per case")
        blocks = [
            net_benefit(y, p, t, w)[0] for w in patient_resample_weights(patient_ids, n_boot, seed)
        ]
        samples = np.concatenate(blocks, axis=0)
        intervals = [
            percentile_interval(float(model[0, j]), samples[:, j], alpha) for j in range(t.size)
        ]
        ci = {
            "low": [c["low"] for c in intervals],
            "high": [c["high"] for c in intervals],
            "n_boot": int(n_boot),
            "alpha": float(alpha),
        }
    return {
        "thresholds": [float(v) for v in t],
        "prevalence": float(y.mean()),
        "n_cases": int(y.size),
        "net_benefit": [float(v) for v in model[0]],
        "treat_all": [float(v) for v in treat_all[0]],
        "treat_none": [0.0] * int(t.size),
        "useful": [bool(m > max(a, 0.0)) for m, a in zip(model[0], treat_all[0], strict=True)],
        "ci": ci,
    }
