"""The difference in ROC-AUC between two scores of the same cases, with a paired bootstrap CI.

"Did model A beat model B?" is a question about the difference of two AUROCs measured on the
same patients. The two AUROCs are strongly correlated (easy patients are easy for both), so
two separate intervals overlap even when A is reliably better, and subtracting independent
resamples overstates the uncertainty. The paired bootstrap resamples patients once and
computes both AUROCs on that same resample; the interval of the per-resample differences
keeps the correlation in (DeLong et al. 1988 do the same analytically, for one case per
patient). Resampling draws patients (``bootstrap.patient_resample_weights``), so a patient's
several prediction times stay together. AUROC is ``clinical_metrics.ranking_metrics``, the
one implementation every ROC-AUC in medsight uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import (
    CI_METHOD,
    patient_resample_weights,
    percentile_interval,
)
from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.evaluate.segmentation.case_arrays import patient_codes


def paired_auroc_difference(
    y_true: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    patient_ids: np.ndarray | Sequence[Any],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """AUROC(A) - AUROC(B) on the same cases, with a paired patient-bootstrap interval.

    Args:
        y_true: 0/1 (or boolean) outcome of each case, shape ``(n_cases,)``.
        score_a: Score of model A per case (higher = more likely the event).
        score_b: Score of model B per case, same cases in the same order.
        patient_ids: One patient ID per case; resampling draws patients.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling generator.
        alpha: One minus the interval's nominal coverage.

    Returns:
        A JSON-serialisable dict: ``difference``, ``auroc_a`` and ``auroc_b`` (each
        ``{"point", "low", "high", "n_boot_valid"}``, the latter two from the same
        resamples), ``p_value`` (two-sided bootstrap p-value of "no difference": twice the
        smaller share of resampled differences on either side of 0, at most 1; ``None``
        when undefined), ``share_a_better`` (share of resamples where A's AUROC is higher),
        ``n_cases``, ``n_patients``, ``n_boot``, ``alpha``, ``seed``, ``ci_method``.

    Raises:
        ValueError: If the arrays disagree in length, scores are not finite, a patient ID
            is missing, or ``n_boot``/``alpha`` is out of range.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    y = np.asarray(y_true).astype(bool).ravel()
    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    if not y.shape == a.shape == b.shape:
        raise ValueError(
            f"need one score of each model per case, got {y.shape}, {a.shape}, {b.shape}"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("scores must be finite")
    codes = patient_codes(patient_ids, y.shape[0])
    ones = np.ones((1, y.shape[0]))
    point_a = float(ranking_metrics(y, a, ones)[0][0])
    point_b = float(ranking_metrics(y, b, ones)[0][0])
    samples_a, samples_b = [], []
    for weights in patient_resample_weights(patient_ids, n_boot, seed):
        samples_a.append(ranking_metrics(y, a, weights)[0])
        samples_b.append(ranking_metrics(y, b, weights)[0])
    auc_a, auc_b = np.concatenate(samples_a), np.concatenate(samples_b)
    diff = auc_a - auc_b
    valid = diff[np.isfinite(diff)]
    p_value = None
    share_a_better = None
    if valid.size:
        p_value = float(min(1.0, 2 * min(np.mean(valid <= 0), np.mean(valid >= 0))))
        share_a_better = float(np.mean(valid > 0))
    point_diff = point_a - point_b if np.isfinite(point_a - point_b) else None
    return {
        "difference": percentile_interval(point_diff, diff, alpha),
        "auroc_a": percentile_interval(point_a, auc_a, alpha),
        "auroc_b": percentile_interval(point_b, auc_b, alpha),
        "p_value": p_value,
        "share_a_better": share_a_better,
        "n_cases": int(y.shape[0]),
        "n_patients": int(codes.max()) + 1,
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "seed": int(seed),
        "ci_method": "paired " + CI_METHOD + " (both scores on each resample)",
    }
