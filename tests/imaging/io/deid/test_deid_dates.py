"""Dates: removed by default, kept or shifted per patient on request; times never shifted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from medsight.imaging.io.deid import DeidPolicy, deidentify_dataset, deidentify_tree
from medsight.imaging.io.deid.date_shift import shift_da, shift_dt
from medsight.imaging.io.deid.keyed_hash import date_offset_days
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

KEY = "date-test-key-0123456789"


def _study(patient_id: str, study_date: str) -> Dataset:
    ds = Dataset()
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19600402"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "093012.5"
    ds.AcquisitionDateTime = f"{study_date}101500.25+0100"
    return ds


def _days(a: str, b: str) -> int:
    parse = dt.datetime.strptime
    return (parse(b, "%Y%m%d") - parse(a, "%Y%m%d")).days


def test_shift_is_consistent_per_patient_and_keeps_intervals() -> None:
    policy = DeidPolicy(key=KEY, dates="shift")
    first = deidentify_dataset(_study("PAT-1", "20200110"), policy)
    later = deidentify_dataset(_study("PAT-1", "20210301"), policy)
    assert first.StudyDate != "20200110"
    assert _days(first.StudyDate, later.StudyDate) == _days("20200110", "20210301")
    offset = _days("20200110", first.StudyDate)
    assert offset == date_offset_days("PAT-1", KEY)
    assert -3652 <= offset <= -365
    assert first.SeriesDate == first.StudyDate
    assert first.AcquisitionDateTime == f"{first.StudyDate}101500.25+0100"
    assert first.StudyTime == "093012.5"  # TM untouched
    assert first.PatientBirthDate == ""  # not covered by the dates option: Basic Profile Z
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [item.CodeValue for item in first.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107"]


def test_other_patients_get_other_offsets() -> None:
    offsets = {date_offset_days(f"PAT-{i}", KEY) for i in range(20)}
    assert len(offsets) > 15
    assert date_offset_days("PAT-1", KEY) != date_offset_days("PAT-1", KEY + "x")


def test_keep_mode_keeps_dates_and_times() -> None:
    out = deidentify_dataset(_study("PAT-1", "20200110"), DeidPolicy(key=KEY, dates="keep"))
    assert (out.StudyDate, out.SeriesDate, out.StudyTime) == ("20200110", "20200110", "093012.5")
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100", "113106"]


def test_default_removes_dates_per_basic_profile() -> None:
    out = deidentify_dataset(_study("PAT-1", "20200110"), DeidPolicy(key=KEY))
    assert out.StudyDate == ""  # Z
    assert out.SeriesDate == "19000101"  # X/D -> D
    assert out.StudyTime == ""  # Z
    assert out.AcquisitionDateTime == "19000101000000"  # X/Z/D -> D
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


def test_unshiftable_date_falls_back_to_the_basic_profile() -> None:
    ds = _study("PAT-1", "20200110")
    with pydicom_silenced():  # pydicom warns about the partial date
        ds.StudyDate = "2020"
    out = deidentify_dataset(ds, DeidPolicy(key=KEY, dates="shift"))
    assert out.StudyDate == ""
    assert shift_da("2020", -400) is None
    assert shift_dt("2020", -400) is None
    assert shift_dt("20200110xyz", -1) is None
    assert shift_da("20200301", -1) == "20200229"


@pytest.fixture(scope="module")
def synth_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scans of one synthetic patient, about a year apart."""
    out = tmp_path_factory.mktemp("dates") / "in"
    write_chest_ct_dataset(out, 2, seed=3, workers=1)
    return out


def test_tree_shift_is_consistent_across_series_of_a_patient(
    synth_in: Path, tmp_path: Path
) -> None:
    deidentify_tree(synth_in, tmp_path / "out", DeidPolicy(key=KEY, dates="shift"))
    dates: dict[str, set[tuple[str, str]]] = {}
    for case in ("case_0001", "case_0002"):
        pairs = set()
        for path in sorted((synth_in / "series" / case).glob("*.dcm")):
            new = dcmread(tmp_path / "out" / path.relative_to(synth_in))
            pairs.add((str(dcmread(path).StudyDate), str(new.StudyDate)))
        dates[case] = pairs
    assert all(len(pairs) == 1 for pairs in dates.values())
    (old1, new1), (old2, new2) = dates["case_0001"].pop(), dates["case_0002"].pop()
    assert old1 != old2  # two studies of one patient...
    assert new1 != old1 and new2 != old2
    assert _days(new1, new2) == _days(old1, old2)  # ...the same shift for both
