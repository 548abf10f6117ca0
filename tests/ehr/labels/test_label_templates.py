"""The built-in label templates on hand-made MEDS folders: outcomes, windows, exclusions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.labels.label_file import read_labels
from medsight.ehr.labels.label_spec import LabelSpec
from medsight.ehr.labels.templates import label_definition, make_labels, write_labels

Maker = Callable[..., Path]

#: (subject, day, code): five admissions stories, one per subject
WARD = [
    (1, None, "SEX//F"),
    (1, -25567, "MEDS_BIRTH"),  # born 2030-01-01: 70 years (17 leap days) before day 0
    (1, 0, "ENCOUNTER//inpatient"),
    (1, 0, "ICD10CM//I50.9"),
    (1, 5, "DISCHARGE//home"),
    (1, 20, "ENCOUNTER//inpatient"),  # readmitted 15 days after the first discharge
    (1, 25, "DISCHARGE//home"),
    (1, 100, "ENCOUNTER//ambulatory"),
    (1, 100, "LOINC//4548-4"),
    (2, 0, "ENCOUNTER//inpatient"),
    (2, 10, "DISCHARGE//home"),
    (2, 40, "ENCOUNTER//inpatient"),  # exactly 30 days after the discharge
    (2, 45, "DISCHARGE//home"),  # the records end here: what follows is unknown
    (3, 0, "ENCOUNTER//inpatient"),
    (3, 3, "MEDS_DEATH"),  # died in hospital
    (3, 3, "DISCHARGE//died"),
    (4, 0, "ENCOUNTER//inpatient"),
    (4, 3, "DISCHARGE//home"),
    (4, 20, "MEDS_DEATH"),  # died at home 17 days after the discharge
]


def labels_of(table) -> dict[tuple[int, float], bool]:
    """(subject, day) -> label."""
    from medsight.ehr.labels.templates import LABEL_COLUMNS

    assert table.schema == LABEL_COLUMNS
    out = {}
    for row in table.to_pylist():
        days = (row["prediction_time"] - DAY0).total_seconds() / 86400
        out[(row["subject_id"], days)] = row["boolean_value"]
    return out


DAY0 = __import__("datetime").datetime(2100, 1, 1)


def test_readmission_within_30_days_of_each_discharge(meds_folder: Maker) -> None:
    data = open_meds(meds_folder(WARD))
    labels = labels_of(make_labels(data, LabelSpec(task="readmission", within_days=30)))
    assert labels == {
        (1, 5): True,  # readmitted on day 20
        (1, 25): False,  # no readmission, records go on to day 100
        (2, 10): True,  # readmitted exactly at t + 30 days: the window's end is included
        (4, 3): False,  # died without readmission: a known negative, not censored
    }
    # (2, 45) censored: records end at t; (3, 3) dropped: dead at the discharge


def test_readmission_without_censoring_takes_records_as_complete(meds_folder: Maker) -> None:
    data = open_meds(meds_folder(WARD))
    spec = LabelSpec(task="readmission", within_days=30, censor=False)
    assert labels_of(make_labels(data, spec))[(2, 45)] is False


def test_death_within_days_of_each_discharge(meds_folder: Maker, tmp_path: Path) -> None:
    out = tmp_path / "labels.parquet"
    spec = LabelSpec(task="death", within_days=17)
    summary = write_labels(meds_folder(WARD), spec, out)
    labels = labels_of(pq.read_table(out))
    # subject 4 died on day 3 + 17: the window's last day
    assert labels == {(1, 5): False, (1, 25): False, (2, 10): False, (4, 3): True}
    assert summary == {
        "rows": 4,
        "subjects": 3,
        "positives": 1,
        "excluded": 2,
        "excluded_by": {"dead": 1, "censored": 1},  # subject 3; subject 2's last discharge
    }
    assert label_definition(out) == spec.describe()
    assert "17 days" in spec.describe()


def test_death_exactly_at_prediction_time_is_excluded_not_positive(meds_folder: Maker) -> None:
    rows = [(7, 0, "ENCOUNTER//inpatient"), (7, 4, "DISCHARGE//died"), (7, 4, "MEDS_DEATH")]
    data = open_meds(meds_folder(rows))
    spec = LabelSpec(task="death", within_days=30)
    assert make_labels(data, spec).num_rows == 0
    # predicted at the admission instead, the same death is 4 days later: positive
    at_visit = LabelSpec(task="death", within_days=4, at="each-visit")
    assert labels_of(make_labels(data, at_visit)) == {(7, 0): True}
    # one microsecond short of the window: negative (the records reach day 4)
    short = LabelSpec(task="death", within_days=3, at="each-visit")
    assert labels_of(make_labels(data, short)) == {(7, 0): False}


def test_in_hospital_death_ends_the_window_at_the_discharge(meds_folder: Maker) -> None:
    rows = [
        (1, 0, "ENCOUNTER//inpatient"),
        (1, 6, "DISCHARGE//home"),
        (1, 9, "MEDS_DEATH"),  # after the discharge: not in-hospital
        (2, 0, "ENCOUNTER//inpatient"),
        (2, 2, "MEDS_DEATH"),
        (2, 2, "DISCHARGE//died"),
        (3, 0, "ENCOUNTER//inpatient"),
        (3, 4, "DISCHARGE//home"),  # discharged alive, no later records: still a negative
        (4, 0, "ENCOUNTER//inpatient"),
        (4, 1, "LOINC//4548-4"),  # no discharge recorded: the admission's end is unknown
    ]
    data = open_meds(meds_folder(rows))
    spec = LabelSpec(task="in-hospital-death", at="each-admission", within_days=365)
    assert labels_of(make_labels(data, spec)) == {(1, 0): False, (2, 0): True, (3, 0): False}
    assert "discharge" in spec.describe()


def test_first_code_prefix_and_its_exclusions(meds_folder: Maker) -> None:
    rows = [
        (1, 0, "ENCOUNTER//ambulatory"),
        (1, 40, "ENCOUNTER//ambulatory"),
        (1, 50, "ICD10CM//E11.21"),  # matches the prefix ICD10CM//E11.2
        (1, 50, "ENCOUNTER//ambulatory"),  # the outcome exactly at t: excluded
        (1, 60, "ENCOUNTER//ambulatory"),  # after the outcome: excluded
        (2, 0, "ENCOUNTER//ambulatory"),
        (2, 10, "ICD10CM//E11.9"),  # does not match
        (2, 80, "ENCOUNTER//ambulatory"),
    ]
    data = open_meds(meds_folder(rows))
    spec = LabelSpec(task="first-code", codes=("ICD10CM//E11.2",), within_days=30, at="each-visit")
    assert labels_of(make_labels(data, spec)) == {
        (1, 0): False,  # the code comes on day 50 > 30
        (1, 40): True,
        (2, 0): False,
        # (2, 80) censored: the records end at t
    }


def test_history_exclusions(meds_folder: Maker) -> None:
    data = open_meds(meds_folder(WARD))
    spec = LabelSpec(task="readmission", within_days=30, min_history_days=10)
    assert set(labels_of(make_labels(data, spec))) == {(1, 25), (2, 10)}  # day 5 and 3: short
    spec = LabelSpec(task="readmission", within_days=30, min_events=4)
    # subject 1's events at or before day 5: encounter, diagnosis, discharge (3); day 25: 5
    assert set(labels_of(make_labels(data, spec))) == {(1, 25)}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("date:2100-01-04", {(1, 3): False, (2, 3): False, (4, 3): True}),  # 3 died on day 3
        ("age:70", {(1, 0): False}),  # subject 1's 70th birthday is day 0; the others: no birth
        ("date:2099-06-01", {}),  # before everyone's records
    ],
)
def test_fixed_date_and_age(meds_folder: Maker, at: str, expected: dict) -> None:
    data = open_meds(meds_folder(WARD))
    spec = LabelSpec(task="death", within_days=30, at=at, censor=at != "date:2100-01-04")
    got = labels_of(make_labels(data, spec))
    assert got == expected


def test_outside_records_and_no_birth_are_counted(meds_folder: Maker, tmp_path: Path) -> None:
    summary = write_labels(
        meds_folder(WARD), LabelSpec(task="death", at="age:70"), tmp_path / "l.csv"
    )
    assert summary["excluded_by"] == {"censored": 1, "no_birth": 3}
    summary = write_labels(
        meds_folder(WARD), LabelSpec(task="death", at="date:2101-01-01"), tmp_path / "l.csv"
    )
    assert summary["excluded_by"] == {"dead": 2, "outside_records": 2}


def test_labels_do_not_depend_on_shards(meds_folder: Maker) -> None:
    spec = LabelSpec(task="readmission", within_days=30)
    one = make_labels(open_meds(meds_folder(WARD, buckets=1)), spec)
    many = make_labels(open_meds(meds_folder(WARD, buckets=4)), spec)
    assert labels_of(one) == labels_of(many)
    assert len(open_meds(meds_folder(WARD, buckets=4)).shard_paths()) > 1


def test_csv_labels_read_back_the_same(meds_folder: Maker, tmp_path: Path) -> None:
    data = meds_folder(WARD)
    spec = LabelSpec(task="readmission", within_days=30)
    write_labels(data, spec, tmp_path / "labels.csv")
    back = read_labels(tmp_path / "labels.csv", open_meds(data))
    assert back.to_pylist() == make_labels(open_meds(data), spec).to_pylist()
    assert back.num_rows == 4


def test_writing_elsewhere_than_parquet_or_csv_is_refused(meds_folder: Maker, tmp_path: Path):
    from medsight.errors import InputError

    with pytest.raises(InputError, match="parquet or .csv"):
        write_labels(meds_folder(WARD), LabelSpec(task="death"), tmp_path / "labels.json")
    assert not (tmp_path / "labels.json").exists()


def test_in_hospital_death_48_hours_into_each_stay(meds_folder: Maker, tmp_path: Path) -> None:
    rows = [
        (1, 0, "ENCOUNTER//inpatient"),
        (1, 1, "DISCHARGE//home"),  # a one-day stay: over before the prediction time
        (2, 0, "ENCOUNTER//inpatient"),
        (2, 1.5, "MEDS_DEATH"),  # died before the prediction time
        (2, 1.5, "DISCHARGE//died"),
        (3, 0, "ENCOUNTER//inpatient"),
        (3, 5, "MEDS_DEATH"),
        (3, 5, "DISCHARGE//died"),
        (4, 0, "ENCOUNTER//inpatient"),
        (4, 4, "DISCHARGE//home"),
    ]
    spec = LabelSpec(task="in-hospital-death", at="each-admission", hours_after=48)
    summary = write_labels(meds_folder(rows), spec, tmp_path / "labels.parquet")
    assert summary["excluded_by"] == {"dead": 1, "visit_ended": 1}
    labels = labels_of(make_labels(open_meds(meds_folder(rows)), spec))
    assert labels == {(3, 2): True, (4, 2): False}
    assert "48 hours after each inpatient admission" in spec.describe()
