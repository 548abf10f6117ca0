from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.imaging.data.manifest import Case, read_manifest
from medsight.imaging.data.patient_split import patient_split
from medsight.imaging.synth.chest_ct import plan_cohort


def _cases(n: int = 300) -> list[Case]:
    return [
        Case(s.case_id, s.identity.patient_id, s.label, Path(s.case_id))
        for s in plan_cohort(n, seed=0)
    ]


def test_no_patient_in_two_splits_and_labels_stratified() -> None:
    cases = _cases()
    splits = patient_split(cases, seed=0)
    by_patient: dict[str, set[str]] = {}
    for c in cases:
        by_patient.setdefault(c.patient_id, set()).add(splits[c.case_id])
    assert all(len(s) == 1 for s in by_patient.values())
    for split in ("train", "val", "test"):
        members = [c for c in cases if splits[c.case_id] == split]
        assert 0.12 < len(members) / len(cases) < 0.7
        for label in ("normal", "benign", "malignant"):
            share = sum(c.label == label for c in members) / len(members)
            assert 0.2 < share < 0.47


def test_split_is_seeded() -> None:
    cases = _cases()
    assert patient_split(cases, 3) == patient_split(cases, 3)
    assert patient_split(cases, 3) != patient_split(cases, 4)


def test_too_few_patients() -> None:
    with pytest.raises(InputError, match="at least 5 patients"):
        patient_split(_cases(3)[:3], 0)


def test_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "labels.csv").write_text("case_id,label\nc1,normal\n")
    with pytest.raises(InputError, match="missing column"):
        read_manifest(tmp_path)
    (tmp_path / "labels.csv").write_text("case_id,patient_id,label,series_dir\nc1,p1,,s\n")
    with pytest.raises(InputError, match=":2: empty label"):
        read_manifest(tmp_path)
