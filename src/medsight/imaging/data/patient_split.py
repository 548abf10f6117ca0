"""Patient-level, label-stratified train/val/test splits (scikit-learn StratifiedGroupKFold).

No patient ever appears in two splits: follow-up scans of one patient would otherwise leak
between training and test and inflate every metric.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from medsight.errors import InputError
from medsight.imaging.data.manifest import Case
from medsight.runs.atomic import atomic_path

SPLITS = ("train", "val", "test")


def _holdout(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of one stratified, grouped fold of about ``fraction`` of the rows."""
    n_splits = max(2, round(1 / fraction))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held = next(iter(folds.split(np.zeros(len(labels)), labels, groups)))
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    return mask


def patient_split(
    cases: list[Case], seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> dict[str, str]:
    """Assign each case to train, val or test, grouped by patient and stratified by label.

    Returns:
        ``{case_id: split}``.

    Raises:
        InputError: fewer than 5 patients, or a class with too few patients to appear in
            every split (a three-way stratified split is impossible).
    """
    patients = {c.patient_id for c in cases}
    if len(patients) < 5:
        raise InputError(f"need at least 5 patients to split, got {len(patients)}")
    needed = max(round(1 / test_fraction), round((1 - test_fraction) / val_fraction))
    for label in sorted({c.label for c in cases}):
        n = len({c.patient_id for c in cases if c.label == label})
        if n < needed:
            raise InputError(
                f"class {label!r} has {n} patient(s); a patient-level train/val/test split "
                f"needs at least {needed} per class"
            )
    labels = np.array([c.label for c in cases])
    groups = np.array([c.patient_id for c in cases])
    test = _holdout(labels, groups, test_fraction, seed)
    rest = np.nonzero(~test)[0]
    val_rest = _holdout(labels[rest], groups[rest], val_fraction / (1 - test_fraction), seed + 1)
    split = np.full(len(cases), "train", dtype=object)
    split[test] = "test"
    split[rest[val_rest]] = "val"
    return {c.case_id: str(s) for c, s in zip(cases, split, strict=True)}


def write_splits(path: Path, cases: list[Case], splits: dict[str, str]) -> Path:
    """Write ``splits.csv`` (case_id, patient_id, label, split) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["case_id", "patient_id", "label", "split"])
        for c in cases:
            writer.writerow([c.case_id, c.patient_id, c.label, splits[c.case_id]])
    return path


def patient_folds(cases: list[Case], k: int, seed: int) -> list[int]:
    """Assign each case to one of ``k`` folds, grouped by patient and stratified by label.

    Returns:
        The fold index (0..k-1) of every case, in order.

    Raises:
        InputError: fewer patients than folds, or a class with fewer patients than folds
            (a fold would have no case of it).
    """
    if k < 2:
        raise InputError(f"--folds must be at least 2, got {k}")
    patients = {c.patient_id for c in cases}
    if len(patients) < k:
        raise InputError(f"{k} folds need at least {k} patients, the data has {len(patients)}")
    for label in sorted({c.label for c in cases}):
        n = len({c.patient_id for c in cases if c.label == label})
        if n < k:
            raise InputError(f"class {label!r} has {n} patient(s), fewer than the {k} folds")
    labels = np.array([c.label for c in cases])
    groups = np.array([c.patient_id for c in cases])
    folds = np.zeros(len(cases), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(cases)), labels, groups)):
        folds[held] = fold
    return [int(f) for f in folds]
