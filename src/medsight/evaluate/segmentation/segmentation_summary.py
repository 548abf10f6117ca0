"""Segmentation results over many cases, with 95% confidence intervals by patient bootstrap.

The input is one record per case, as ``case_record`` builds it::

    {"case_id": str,
     "metrics": {class_name: {metric: float | None}},      # segmentation_metrics.case_metrics
     "lesions": {class_name: LesionResult.to_dict()}}      # optional; only detection classes

Every case must carry the same classes. Intervals use the classification bootstrap's
machinery (``bootstrap.patient_resample_weights`` and ``bootstrap.percentile_interval``):
patients are drawn with replacement, all cases of a drawn patient come along as often as
the patient was drawn, and the interval is the percentile interval of the resampled
statistic. A case is one unit of the point estimates (a patient with two cases weighs
twice), but the uncertainty is that of the patients, because their cases are correlated.

Undefined values (``None``: HD95 when only one of prediction and reference is empty,
volume percentage when the reference is empty; see ``segmentation_metrics``) are left out of
means and medians and counted as ``n_undefined``. Both-empty cases score as perfect
(Dice 1, HD95 0), as ``case_metrics`` defines; ``n_both_empty`` says how many there were,
since many of them lift the mean Dice. Lesion sensitivity is pooled over lesions:
``sum(TP) / sum(TP + FN)``, so a case with many lesions weighs more; false positives are per
case: ``sum(FP) / n_cases``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import CI_METHOD, patient_resample_weights, percentile_interval
from medsight.evaluate.segmentation.case_arrays import patient_codes
from medsight.evaluate.segmentation.lesion_detection import detect_lesions
from medsight.evaluate.segmentation.segmentation_metrics import METRIC_NAMES, case_metrics


def case_record(
    case_id: str,
    pred: np.ndarray,
    truth: np.ndarray,
    spacing_mm: Sequence[float],
    labels: Mapping[int, str],
    tolerance_mm: float = 2.0,
    lesion_classes: Sequence[str] = (),
    min_lesion_volume_mm3: float = 0.0,
) -> dict[str, Any]:
    """Evaluate one case into the record ``summarise_segmentation`` takes.

    Args:
        case_id: Identifier of the case (e.g. ``SeriesInstanceUID``).
        pred: Predicted label map ``(z, y, x)``.
        truth: Reference label map, same shape.
        spacing_mm: Voxel size ``(z, y, x)`` in mm.
        labels: ``{label value: class name}`` of the classes to score.
        tolerance_mm: Surface Dice tolerance in mm.
        lesion_classes: Names of the classes to also score lesion by lesion (e.g.
            nodules, metastases; not organs, which are one structure).
        min_lesion_volume_mm3: Size floor of lesion detection (see ``detect_lesions``).

    Returns:
        ``{"case_id", "metrics", "lesions"}``, JSON-serialisable.

    Raises:
        ValueError: If a lesion class is not among ``labels``, or the inputs are invalid
            (see ``case_metrics`` and ``detect_lesions``).
    """
    value_of = {name: value for value, name in labels.items()}
    unknown = [name for name in lesion_classes if name not in value_of]
    if unknown:
        raise ValueError(f"lesion classes {unknown} are not among labels {sorted(value_of)}")
    p = np.asarray(pred)
    t = np.asarray(truth)
    return {
        "case_id": str(case_id),
        "metrics": case_metrics(p, t, spacing_mm, labels, tolerance_mm),
        "lesions": {
            name: detect_lesions(
                p == value_of[name], t == value_of[name], spacing_mm, min_lesion_volume_mm3
            ).to_dict()
            for name in lesion_classes
        },
    }


def _as_float(value: Any) -> float:
    """A metric value as a float, NaN where undefined (``None``)."""
    return math.nan if value is None else float(value)


def _weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` under each row of ``weights``; NaN where a row weighs nothing."""
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weights @ values / total, np.nan)


def _weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``np.median`` of ``values`` repeated by each row of integer ``weights``, without
    building the repeated arrays: the two middle order statistics are read off the
    cumulative weights of the sorted values."""
    if values.size == 0:
        return np.full(weights.shape[0], np.nan)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    cumulative = np.cumsum(weights[:, order], axis=1)
    total = cumulative[:, -1]
    # 0-based positions of the lower and upper middle element of each resample.
    low_pos = np.floor((total - 1) / 2)[:, None]
    high_pos = np.floor(total / 2)[:, None]
    # The element at position k is the first whose cumulative count exceeds k.
    low_idx = np.minimum((cumulative <= low_pos).sum(axis=1), values.size - 1)
    high_idx = np.minimum((cumulative <= high_pos).sum(axis=1), values.size - 1)
    medians = (ordered[low_idx] + ordered[high_idx]) / 2.0
    return np.where(total > 0, medians, np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, weights: np.ndarray) -> np.ndarray:
    num = weights @ numerator
    den = weights @ denominator
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _class_sets(per_case: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    first = list(per_case[0].get(key) or {})
    for case in per_case[1:]:
        names = list(case.get(key) or {})
        if set(names) != set(first):
            raise ValueError(
                f"case {case.get('case_id')!r} has {key} for {sorted(names)} but case "
                f"{per_case[0].get('case_id')!r} has {sorted(first)}; every case must carry "
                "the same classes"
            )
    return first


def summarise_segmentation(
    per_case: Sequence[Mapping[str, Any]],
    patient_ids: Sequence[Any],
    seed: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
    k_worst: int = 5,
) -> dict[str, Any]:
    """Mean and median of every metric per class, lesion detection rates, with patient CIs.

    Args:
        per_case: One record per case (see the module docstring and ``case_record``).
        patient_ids: The patient of each case, in the same order; cases of one patient are
            resampled together.
        seed: Seed of the resampling generator (same seed, same resamples).
        n_boot: Number of bootstrap resamples.
        alpha: One minus the nominal coverage (0.05 gives 95% intervals).
        k_worst: How many lowest-Dice cases to list per class.

    Returns:
        A JSON-serialisable dict (no NaN; ``None`` where undefined)::

            {"n_cases": int, "n_patients": int, "n_boot": int, "alpha": float,
             "seed": int, "ci_method": str, "class_names": [str],
             "per_class": {class_name: {
                 "n_both_empty": int,
                 "metrics": {metric: {"mean": CI, "median": CI,
                                      "n_defined": int, "n_undefined": int}},
                 "lesions": None | {"n_true": int, "tp": int, "fn": int, "fp": int,
                                    "sensitivity": CI, "fp_per_case": CI}}},
             "worst_cases": {class_name: [{"case_id": str, "patient_id": str,
                                           "dice": float}]}}

        where ``metric`` is each of ``segmentation_metrics.METRIC_NAMES`` and ``CI`` is
        ``{"point", "low", "high", "n_boot_valid"}`` as in ``bootstrap``. ``lesions`` is
        ``None`` for classes without lesion records.

    Raises:
        ValueError: If there are no cases, ``patient_ids`` does not give one ID per case,
            cases carry different classes, ``alpha`` or ``n_boot`` is out of range, or
            ``k_worst`` is negative.
    """
    n_cases = len(per_case)
    if n_cases == 0:
        raise ValueError("no cases to summarise")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if k_worst < 0:
        raise ValueError(f"k_worst must be >= 0, got {k_worst}")
    codes = patient_codes(patient_ids, n_cases)
    ids = np.asarray(patient_ids, dtype=object).reshape(-1)
    class_names = _class_sets(per_case, "metrics")
    lesion_names = _class_sets(per_case, "lesions")

    values = {
        (name, metric): np.array(
            [_as_float(case["metrics"][name].get(metric)) for case in per_case]
        )
        for name in class_names
        for metric in METRIC_NAMES
    }
    counts = {
        (name, key): np.array([float(case["lesions"][name][key]) for case in per_case])
        for name in lesion_names
        for key in ("tp", "fn", "fp")
    }

    def statistics(weights: np.ndarray) -> dict[tuple[str, ...], np.ndarray]:
        out: dict[tuple[str, ...], np.ndarray] = {}
        for (name, metric), x in values.items():
            defined = np.isfinite(x)
            out[(name, metric, "mean")] = _weighted_means(x[defined], weights[:, defined])
            out[(name, metric, "median")] = _weighted_medians(x[defined], weights[:, defined])
        for name in lesion_names:
            tp, fn, fp = (counts[(name, key)] for key in ("tp", "fn", "fp"))
            out[(name, "sensitivity")] = _ratio(tp, tp + fn, weights)
            out[(name, "fp_per_case")] = _ratio(fp, np.ones(n_cases), weights)
        return out

    point = {key: float(v[0]) for key, v in statistics(np.ones((1, n_cases))).items()}
    blocks: dict[tuple[str, ...], list[np.ndarray]] = {key: [] for key in point}
    for weights in patient_resample_weights(patient_ids, n_boot, seed):
        for key, v in statistics(weights).items():
            blocks[key].append(v)
    ci = {key: percentile_interval(point[key], np.concatenate(blocks[key]), alpha) for key in point}

    per_class: dict[str, Any] = {}
    worst_cases: dict[str, list[dict[str, Any]]] = {}
    for name in class_names:
        defined_counts = {m: int(np.isfinite(values[(name, m)]).sum()) for m in METRIC_NAMES}
        both_empty = (values[(name, "volume_pred_ml")] == 0) & (
            values[(name, "volume_true_ml")] == 0
        )
        lesions = None
        if name in lesion_names:
            tp, fn, fp = (int(counts[(name, key)].sum()) for key in ("tp", "fn", "fp"))
            lesions = {
                "n_true": tp + fn,
                "tp": tp,
                "fn": fn,
                "fp": fp,
                "sensitivity": ci[(name, "sensitivity")],
                "fp_per_case": ci[(name, "fp_per_case")],
            }
        per_class[name] = {
            "n_both_empty": int(both_empty.sum()),
            "metrics": {
                m: {
                    "mean": ci[(name, m, "mean")],
                    "median": ci[(name, m, "median")],
                    "n_defined": defined_counts[m],
                    "n_undefined": n_cases - defined_counts[m],
                }
                for m in METRIC_NAMES
            },
            "lesions": lesions,
        }
        dice = values[(name, "dice")]
        ranked = [i for i in np.argsort(dice, kind="stable") if np.isfinite(dice[i])]
        worst_cases[name] = [
            {
                "case_id": str(per_case[i].get("case_id")),
                "patient_id": str(ids[i]),
                "dice": float(dice[i]),
            }
            for i in ranked[:k_worst]
        ]

    return {
        "n_cases": n_cases,
        "n_patients": int(codes.max()) + 1,
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "seed": int(seed),
        "ci_method": CI_METHOD,
        "class_names": class_names,
        "per_class": per_class,
        "worst_cases": worst_cases,
    }
