"""Checks on the per-case arrays every evaluation function takes, done once and in one place.

Labels are integer class indices ``0..k-1``; ``probs`` holds one row of class probabilities
(or any class scores) per case, shape ``(n_cases, k)``; every case has a ``patient_id``, and
several cases may share one patient. A wrong shape or an out-of-range label would otherwise
give silently wrong metrics, so these checks raise instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def checked_cases(
    y_true: np.ndarray | Sequence[int], probs: np.ndarray, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and class scores and return them as ``int64`` and ``float64`` arrays.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities or scores, shape ``(n_cases, k)``.
        n_classes: Expected ``k`` (e.g. ``len(class_names)``); ``None`` takes it from
            ``probs``.

    Returns:
        ``(y, p)``: the labels as ``int64`` and the scores as ``float64``.

    Raises:
        ValueError: If the shapes disagree, there are no cases or fewer than two classes,
            ``probs`` is not finite, or a label is not an integer index into the classes.
    """
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label per case), got shape {y.shape}")
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (cases, classes), got shape {p.shape}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(
            f"y_true has {y.shape[0]} cases but probs has {p.shape[0]} rows; they must match"
        )
    k = p.shape[1] if n_classes is None else n_classes
    if p.shape[1] != k:
        raise ValueError(f"probs has {p.shape[1]} columns but there are {k} classes")
    if k < 2:
        raise ValueError(f"need at least two classes, got {k}")
    if y.shape[0] == 0:
        raise ValueError("no cases: y_true and probs are empty")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or infinite values")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true holds labels outside 0..{k - 1}: {sorted(set(y.tolist()))}")
    return y, p


def patient_codes(patient_ids: np.ndarray | Sequence[Any], n_cases: int) -> np.ndarray:
    """Map each case's patient ID to a patient number ``0..n_patients-1``.

    IDs are compared as text (DICOM ``PatientID`` is a string), so ``7`` and ``"7"`` are the
    same patient.

    Args:
        patient_ids: One patient ID per case.
        n_cases: Number of cases the IDs must cover.

    Returns:
        ``int64`` array of shape ``(n_cases,)``; cases of one patient share a number.

    Raises:
        ValueError: If there is not one ID per case, or an ID is missing (``None``, NaN or
            empty): cases without a patient cannot be resampled by patient, and lumping
            them into one "patient" would give wrong confidence intervals.
    """
    ids = list(np.asarray(patient_ids, dtype=object).reshape(-1))
    if len(ids) != n_cases:
        raise ValueError(f"got {len(ids)} patient IDs for {n_cases} cases; need one per case")
    texts = []
    for position, pid in enumerate(ids):
        if pid is None or (isinstance(pid, float) and np.isnan(pid)) or str(pid).strip() == "":
            raise ValueError(f"case {position} has no patient ID; every case needs one")
        texts.append(str(pid))
    _, codes = np.unique(np.asarray(texts), return_inverse=True)
    return codes.astype(np.int64).reshape(-1)
