"""Percentile bootstrap confidence intervals that resample patients, not cases.

Cases of one patient (several images, both breasts, follow-up scans) are correlated, so a
bootstrap that resamples cases pretends to have more independent evidence than there is and
gives intervals that are too narrow. Here every resample draws ``n_patients`` patients with
replacement and takes *all* cases of each drawn patient, as often as the patient was drawn.
A resample is therefore the original cases with integer multiplicities ("case weights"):
``metrics_with_ci`` evaluates the whole metric table for blocks of weight vectors at once
(see ``clinical_metrics.metric_samples``), which takes well under a second for 1000
resamples of a few hundred cases.

The interval is the percentile interval ``[q(alpha/2), q(1 - alpha/2)]`` of the resampled
values. A resample in which a metric is undefined (a class missing, nothing predicted
positive) is skipped for that metric only; how many were usable is reported as
``n_boot_valid``. A low ``n_boot_valid`` means the interval rests on the resamples that
happened to contain the rare class, and is optimistic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning

from medsight.evaluate.classification.clinical_metrics import (
    clinical_metrics,
    metric_samples,
    nest_metrics,
)
from medsight.evaluate.segmentation.case_arrays import checked_cases, patient_codes

# Bound on resamples x cases held in memory at once (8 bytes each, a few arrays of it).
CELLS_PER_BLOCK = 2_000_000

CI_METHOD = "percentile bootstrap, resampling patients with replacement"


def _check_n_boot(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")


def patient_resample_weights(
    patient_ids: np.ndarray | Sequence[Any], n_boot: int = 1000, seed: int = 0
) -> Iterator[np.ndarray]:
    """Yield the case multiplicities of ``n_boot`` patient-level bootstrap resamples.

    Each resample draws ``n_patients`` patients uniformly with replacement; a case's weight
    is the number of times its patient was drawn, so all cases of one patient always share a
    weight. Each resample uses its own call to the generator, so the resamples are the same
    whatever block size they are delivered in.

    Args:
        patient_ids: One patient ID per case.
        n_boot: Number of resamples.
        seed: Seed of ``numpy.random.default_rng``.

    Yields:
        Blocks of shape ``(rows, n_cases)`` of non-negative integer weights (as floats);
        the rows of all blocks together are the ``n_boot`` resamples, in order.

    Raises:
        ValueError: If ``n_boot`` is not positive or a patient ID is missing.
    """
    _check_n_boot(n_boot)
    ids = np.asarray(patient_ids, dtype=object).reshape(-1)
    codes = patient_codes(ids, ids.shape[0])
    n_patients = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    rows_per_block = max(1, CELLS_PER_BLOCK // max(codes.shape[0], n_patients))
    for start in range(0, n_boot, rows_per_block):
        rows = min(rows_per_block, n_boot - start)
        counts = np.empty((rows, n_patients))
        for row in range(rows):
            drawn = rng.integers(0, n_patients, size=n_patients)
            counts[row] = np.bincount(drawn, minlength=n_patients)
        yield counts[:, codes]


def percentile_interval(
    point: float | None, samples: np.ndarray, alpha: float = 0.05
) -> dict[str, Any]:
    """Summarise bootstrap values as a point estimate with a percentile interval.

    Args:
        point: The metric on the full data; ``None`` (or NaN) if undefined there.
        samples: The metric on each resample, NaN where it was undefined.
        alpha: One minus the interval's nominal coverage.

    Returns:
        ``{"point", "low", "high", "n_boot_valid"}``; ``low``/``high`` are ``None`` when the
        point estimate is undefined or no resample gave a value.
    """
    values = np.asarray(samples, dtype=np.float64)
    valid = values[np.isfinite(values)]
    if point is not None and not np.isfinite(point):
        point = None
    if point is None or valid.size == 0:
        return {"point": point, "low": None, "high": None, "n_boot_valid": int(valid.size)}
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    return {
        "point": float(point),
        "low": float(low),
        "high": float(high),
        "n_boot_valid": int(valid.size),
    }


def _undefined_as_nan(
    metric_fn: Callable[[np.ndarray, np.ndarray], float | None], y: np.ndarray, p: np.ndarray
) -> float:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            value = metric_fn(y, p)
    except ValueError:
        # scikit-learn raises ValueError for e.g. an AUC of a resample with one class only.
        return float("nan")
    return float("nan") if value is None else float(value)


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float | None],
    y_true: np.ndarray,
    probs: np.ndarray,
    patient_ids: np.ndarray | Sequence[Any],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile confidence interval of any metric, resampling patients.

    ``metric_fn`` is called once per resample (on the resampled cases, a patient's cases
    repeated as often as the patient was drawn), so this is for one metric at a time; for
    the full table use ``metrics_with_ci``, which is vectorised.

    Args:
        metric_fn: ``metric_fn(y_true, probs) -> float``; returning ``None``/NaN or raising
            ``ValueError`` on a resample marks the metric undefined there (skipped, counted).
        y_true: Labels of each case, first axis = cases.
        probs: Scores of each case, first axis = cases.
        patient_ids: One patient ID per case.
        n_boot: Number of resamples.
        alpha: One minus the nominal coverage (0.05 gives a 95% interval).
        seed: Seed of the resampling generator.

    Returns:
        ``{"point", "low", "high", "n_boot_valid"}`` as plain floats/ints (``None`` where
        undefined).

    Raises:
        ValueError: If the arrays disagree in length, a patient ID is missing, ``n_boot``
            or ``alpha`` is out of range. Whatever ``metric_fn`` raises on the full data
            propagates, since then the inputs, not a resample, are at fault.
    """
    _check_n_boot(n_boot)
    _check_alpha(alpha)
    y = np.asarray(y_true)
    p = np.asarray(probs)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} cases but probs has {p.shape[0]}")
    patient_codes(patient_ids, y.shape[0])  # one ID per case, none missing
    point = metric_fn(y, p)
    samples = np.full(n_boot, np.nan)
    positions = np.arange(y.shape[0])
    row = 0
    for block in patient_resample_weights(patient_ids, n_boot, seed):
        for weights in block.astype(np.int64):
            cases = np.repeat(positions, weights)
            samples[row] = _undefined_as_nan(metric_fn, y[cases], p[cases])
            row += 1
    return percentile_interval(None if point is None else float(point), samples, alpha)


def metrics_with_ci(
    y_true: np.ndarray,
    probs: np.ndarray,
    patient_ids: np.ndarray | Sequence[Any],
    class_names: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The clinical metric table (``clinical_metrics``) with patient-bootstrap intervals.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        patient_ids: One patient ID per case; resampling draws patients.
        class_names: Name of each class, in label order.
        n_boot: Number of resamples.
        seed: Seed of the resampling generator (same seed, same resamples).
        alpha: One minus the nominal coverage (0.05 gives 95% intervals).

    Returns:
        A JSON-serialisable dict::

            {"n_cases": int, "n_patients": int, "class_names": [str],
             "n_boot": int, "alpha": float, "seed": int, "ci_method": str,
             "overall": {"accuracy": CI, "balanced_accuracy": CI},
             "macro": {metric: CI},
             "per_class": {class_name: {metric: CI, "support": int}},
             "confusion_matrix": [[int]]}

        where ``metric`` is each of ``sensitivity, specificity, ppv, npv, f1, roc_auc,
        pr_auc`` and ``CI`` is ``{"point", "low", "high", "n_boot_valid"}``.

    Raises:
        ValueError: If the inputs are inconsistent (see ``clinical_metrics``), a patient ID
            is missing, or ``n_boot``/``alpha`` is out of range.
    """
    _check_n_boot(n_boot)
    _check_alpha(alpha)
    k = len(class_names)
    y, p = checked_cases(y_true, probs, k)
    point_table = clinical_metrics(y, p, class_names)
    codes = patient_codes(patient_ids, y.shape[0])
    point = metric_samples(y, p, class_names, np.ones((1, y.shape[0])))
    blocks: dict[tuple[str, ...], list[np.ndarray]] = {path: [] for path in point}
    # The original IDs, not ``codes``: the same seed then gives the same resamples as
    # ``bootstrap_ci`` and ``patient_resample_weights`` called on these IDs.
    for weights in patient_resample_weights(patient_ids, n_boot, seed):
        for path, values in metric_samples(y, p, class_names, weights).items():
            blocks[path].append(values)
    table = nest_metrics(
        {
            path: percentile_interval(float(point[path][0]), np.concatenate(blocks[path]), alpha)
            for path in point
        }
    )
    for name in point_table["class_names"]:
        table["per_class"][name]["support"] = point_table["per_class"][name]["support"]
    return {
        "n_cases": int(y.shape[0]),
        "n_patients": int(codes.max()) + 1,
        "class_names": point_table["class_names"],
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "seed": int(seed),
        "ci_method": CI_METHOD,
        **table,
        "confusion_matrix": point_table["confusion_matrix"],
    }
