"""The clinical metric table by sex and by age band, each with patient-bootstrap intervals.

A model that is good on average can fail a subgroup; reporting by sex and age is what
regulators and reviewers ask for first. Each subgroup's table is ``metrics_with_ci`` on
its cases alone (resampling its patients). A subgroup with fewer than ``min_cases`` cases,
or without a case of every class, gets its counts and ``metrics: None`` with the reason:
its intervals would be too wide, or its macro metrics undefined, to say anything.

Inputs per case: ``sex`` is ``"M"``/``"F"`` (DICOM ``PatientSex``; ``"O"`` or other text
forms its own group), with ``""``/``None`` meaning unknown; ``age`` is in years (float),
NaN meaning unknown. Age bands are half-open ``[lower, upper)`` between ``age_edges``; the
default edges ``(50, 65, 75)`` give ``<50``, ``50-64``, ``65-74``, ``>=75``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import metrics_with_ci
from medsight.evaluate.segmentation.case_arrays import checked_cases, patient_codes

DEFAULT_AGE_EDGES = (50.0, 65.0, 75.0)
MIN_CASES = 10
UNKNOWN = "unknown"


def age_band_names(edges: Sequence[float] = DEFAULT_AGE_EDGES) -> list[str]:
    """Names of the age bands between ``edges``, youngest first.

    Integer edges give completed-years names (``50-64`` for ``[50, 65)``); other edges give
    ``50.5-<65`` style names.

    Args:
        edges: Strictly increasing band boundaries in years.

    Returns:
        ``len(edges) + 1`` names.

    Raises:
        ValueError: If ``edges`` is empty, not finite or not strictly increasing.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(f"age edges must be finite and strictly increasing, got {list(edges)}")
    whole = bool(np.all(e == np.round(e)))
    names = [f"<{e[0]:g}"]
    for low, high in zip(e[:-1], e[1:], strict=True):
        names.append(f"{low:g}-{high - 1:g}" if whole else f"{low:g}-<{high:g}")
    names.append(f">={e[-1]:g}")
    return names


def age_bands(
    age: np.ndarray | Sequence[float | None], edges: Sequence[float] = DEFAULT_AGE_EDGES
) -> list[str]:
    """The age band of each case (``"unknown"`` for a missing age).

    Args:
        age: Age of each case in years; NaN or ``None`` if unknown.
        edges: Strictly increasing band boundaries in years.

    Returns:
        One band name (from ``age_band_names``) per case.

    Raises:
        ValueError: If ``edges`` is invalid or an age is negative.
    """
    names = age_band_names(edges)
    years = np.array([np.nan if a is None else float(a) for a in age], dtype=np.float64)
    if np.any(years < 0):
        raise ValueError("ages must be non-negative years")
    positions = np.searchsorted(np.asarray(edges, dtype=np.float64), years, side="right")
    return [UNKNOWN if np.isnan(a) else names[i] for a, i in zip(years, positions, strict=True)]


def sex_groups(sex: np.ndarray | Sequence[str | None]) -> list[str]:
    """The sex group of each case: upper-cased text, ``"unknown"`` if empty or missing.

    Args:
        sex: ``PatientSex`` of each case.

    Returns:
        One group name per case.
    """
    groups = []
    for value in sex:
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else value
        text = str(text).strip().upper()
        groups.append(text if text else UNKNOWN)
    return groups


def _group_table(
    members: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    patient_ids: np.ndarray,
    class_names: Sequence[str],
    min_cases: int,
    n_boot: int,
    seed: int,
    alpha: float,
) -> dict[str, Any]:
    y_g = y[members]
    counts = np.bincount(y_g, minlength=len(class_names))
    n_cases = int(members.sum())
    missing = [str(name) for name, count in zip(class_names, counts, strict=True) if count == 0]
    if n_cases < min_cases:
        reason: str | None = f"only {n_cases} cases (fewer than {min_cases})"
    elif missing:
        reason = f"no case of class {', '.join(missing)}"
    else:
        reason = None
    metrics = None
    if reason is None:
        metrics = metrics_with_ci(
            y_g,
            p[members],
            patient_ids[members],
            class_names,
            n_boot=n_boot,
            seed=seed,
            alpha=alpha,
        )
    return {
        "n_cases": n_cases,
        "n_patients": int(np.unique(patient_ids[members]).size),
        "class_counts": {str(name): int(c) for name, c in zip(class_names, counts, strict=True)},
        "metrics": metrics,
        "reason": reason,
    }


def _ordered(groups: list[str], always: Sequence[str]) -> list[str]:
    present = set(groups)
    rest = sorted(present - set(always) - {UNKNOWN})
    return list(always) + rest + ([UNKNOWN] if UNKNOWN in present else [])


def subgroup_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    patient_ids: np.ndarray | Sequence[Any],
    class_names: Sequence[str],
    sex: np.ndarray | Sequence[str | None] | None = None,
    age: np.ndarray | Sequence[float | None] | None = None,
    age_edges: Sequence[float] = DEFAULT_AGE_EDGES,
    min_cases: int = MIN_CASES,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Metric tables with patient-bootstrap intervals by sex and by age band.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        patient_ids: One patient ID per case.
        class_names: Name of each class, in label order.
        sex: ``PatientSex`` per case, or ``None`` to skip the by-sex table.
        age: Age in years per case, or ``None`` to skip the by-age table.
        age_edges: Strictly increasing age-band boundaries in years.
        min_cases: Smallest subgroup that gets metrics.
        n_boot: Bootstrap resamples per subgroup.
        seed: Seed of the resampling generator (the same for every subgroup).
        alpha: One minus the nominal coverage of the intervals.

    Returns:
        A JSON-serialisable dict ``{"n_cases", "min_cases", "age_edges", "by_sex",
        "by_age"}``. ``by_sex``/``by_age`` is ``None`` when its attribute was not given,
        else ``{group: {"n_cases", "n_patients", "class_counts": {class: int}, "metrics",
        "reason"}}`` where ``metrics`` is the ``metrics_with_ci`` dict of the subgroup or
        ``None``, and ``reason`` says why it is ``None``. ``"F"``, ``"M"`` and every age
        band are always listed (with zero counts if empty); ``"unknown"`` is listed last
        when some case lacks the attribute. Each table's ``n_cases`` add up to the total.

    Raises:
        ValueError: If the inputs are inconsistent, ``sex``/``age`` do not have one entry
            per case, ``age_edges`` is invalid or ``min_cases`` is below 1.
    """
    if min_cases < 1:
        raise ValueError(f"min_cases must be at least 1, got {min_cases}")
    y, p = checked_cases(y_true, probs, len(class_names))
    ids = np.asarray([str(pid) for pid in np.asarray(patient_ids, dtype=object).reshape(-1)])
    patient_codes(patient_ids, y.shape[0])  # raises on a missing or miscounted ID

    def table(groups: list[str], always: Sequence[str], attribute: str) -> dict[str, Any]:
        if len(groups) != y.shape[0]:
            raise ValueError(f"got {len(groups)} {attribute} values for {y.shape[0]} cases")
        labels = np.asarray(groups, dtype=object)
        return {
            name: _group_table(
                labels == name, y, p, ids, class_names, min_cases, n_boot, seed, alpha
            )
            for name in _ordered(groups, always)
        }

    return {
        "n_cases": int(y.shape[0]),
        "min_cases": int(min_cases),
        "age_edges": [float(e) for e in age_edges],
        "by_sex": None if sex is None else table(sex_groups(sex), ("F", "M"), "sex"),
        "by_age": (
            None
            if age is None
            else table(age_bands(age, age_edges), age_band_names(age_edges), "age")
        ),
    }
