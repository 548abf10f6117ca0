"""Cross-validation folds are patient-grouped and stratified (`patient_folds`)."""

from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.imaging.data.manifest import Case
from medsight.imaging.data.patient_split import patient_folds
from medsight.imaging.synth.chest_ct import plan_cohort


def _cases() -> list[Case]:
    return [
        Case(s.case_id, s.identity.patient_id, s.label, Path(s.case_id))
        for s in plan_cohort(200, 0)
    ]


@pytest.mark.parametrize("k", [3, 5])
def test_kfold_never_puts_one_patient_in_two_folds(k: int) -> None:
    cases = _cases()
    folds = patient_folds(cases, k, seed=0)
    fold_of: dict[str, set[int]] = {}
    for case, fold in zip(cases, folds, strict=True):
        fold_of.setdefault(case.patient_id, set()).add(fold)
    assert all(len(f) == 1 for f in fold_of.values())
    assert set(folds) == set(range(k))
    for fold in range(k):
        labels = {c.label for c, f in zip(cases, folds, strict=True) if f == fold}
        assert labels == {"normal", "benign", "malignant"}


def test_fewer_patients_than_folds_is_refused() -> None:
    cases = _cases()[:6]
    with pytest.raises(InputError, match="patient"):
        patient_folds(cases, 10, seed=0)
