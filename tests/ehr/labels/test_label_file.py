"""Users' own labels files: good ones are normalised; bad ones give exit 2 naming file and row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.labels.label_file import read_labels

EVENTS = [
    (1, None, "SEX//F"),
    (1, -20000, "MEDS_BIRTH"),
    (1, 0, "ENCOUNTER//inpatient"),
    (1, 4, "DISCHARGE//home"),
    (2, 10, "ENCOUNTER//ambulatory"),
    (3, None, "SEX//M"),  # a subject with no timed events
]
HEADER = "subject_id,prediction_time,boolean_value\n"


@pytest.fixture
def data(meds_folder: Callable[..., Path]) -> Path:
    return meds_folder(EVENTS)


def test_a_good_csv_is_read_zoned_times_to_utc(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        HEADER
        + "2,2100-01-12T01:00:00+01:00,1\n"
        + "1,2100-01-05T00:00:00Z,TRUE\n"
        + "1,2100-01-01T00:00:00Z,false\n"
        + "1,2100-01-01T00:00:00Z,0\n"  # an exact repeat is dropped
    )
    table = read_labels(path, open_meds(data))
    assert table.to_pylist() == [
        {"subject_id": 1, "prediction_time": dt.datetime(2100, 1, 1), "boolean_value": False},
        {"subject_id": 1, "prediction_time": dt.datetime(2100, 1, 5), "boolean_value": True},
        {"subject_id": 2, "prediction_time": dt.datetime(2100, 1, 12), "boolean_value": True},
    ]


def test_a_parquet_with_zoned_timestamps_and_integers(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.parquet"
    zoned = pa.array([dt.datetime(2100, 1, 3, 12, tzinfo=dt.UTC)], pa.timestamp("ms", tz="UTC"))
    pq.write_table(
        pa.table(
            {
                "subject_id": pa.array([1], pa.int32()),
                "prediction_time": zoned,
                "boolean_value": pa.array([1], pa.int8()),
                "note": ["ignored"],
            }
        ),
        path,
    )
    table = read_labels(path, open_meds(data))
    assert table.schema.field("prediction_time").type == pa.timestamp("us")
    assert table.to_pylist() == [
        {"subject_id": 1, "prediction_time": dt.datetime(2100, 1, 3, 12), "boolean_value": True}
    ]


BAD_CSV = [
    (
        "unparsable time",
        "1,2100-01-02,1\n1,next tuesday,0\n",
        "row 2: prediction_time is not an ISO 8601 time",
    ),
    (
        "non-boolean",
        "1,2100-01-02,1\n1,2100-01-03,yes\n",
        "row 2: boolean_value is not true/false/1/0",
    ),
    ("empty value", "1,2100-01-02,1\n1,2100-01-03,\n", "row 2: boolean_value is empty"),
    (
        "subject not a number",
        "1,2100-01-02,1\nP-17,2100-01-03,0\n",
        "row 2: subject_id is not an integer",
    ),
    ("unknown subject", "1,2100-01-02,1\n99,2100-01-03,0\n", "row 2: subject_id is not in"),
    (
        "before any data",
        "1,2100-01-02,1\n2,2100-01-03,0\n",
        "row 2: prediction_time is before any of the subject's data",
    ),
    ("no timed data", "1,2100-01-02,1\n3,2100-01-03,0\n", "row 2: the subject has no timed events"),
    (
        "zones mixed",
        "1,2100-01-02T00:00Z,1\n1,2100-01-03T00:00,0\n",
        "row 2: prediction_time lacks a time zone but row 1 has a zone",
    ),
    (
        "zones mixed other way",
        "1,2100-01-02,1\n1,2100-01-03T00:00+02:00,0\n",
        "row 2: prediction_time has a time zone but row 1 has no zone",
    ),
    (
        "conflicting repeat",
        "1,2100-01-02,1\n1,2100-01-03,1\n1,2100-01-02,0\n",
        "row 3: repeats the subject and prediction_time of row 1",
    ),
]


@pytest.mark.parametrize(("case", "rows", "message"), BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_labels_exit_2_naming_file_and_row(
    cli: Callable[..., int], data: Path, tmp_path: Path, capsys, case: str, rows: str, message: str
) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + rows)
    out = tmp_path / "labels.parquet"
    assert cli("ehr", "label", str(data), "--labels", str(path), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: {message}" + err[len(f"error: {path}: {message}") :]
    assert message in err and err.count("\n") == 1
    assert "P-17" not in err  # never the identifier itself
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "mine.csv",
            "subject_id,prediction_time\n1,2100-01-02\n",
            "missing column(s) boolean_value",
        ),
        ("mine.csv", HEADER, "no labels"),
        ("mine.csv", None, "no such labels file"),
        ("mine.xlsx", "x", "a labels file is .parquet or .csv"),
        ("mine.parquet", "not parquet", "not a readable labels file"),
    ],
)
def test_bad_label_files_exit_2(
    cli: Callable[..., int],
    data: Path,
    tmp_path: Path,
    capsys,
    name: str,
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert cli("ehr", "label", str(data), "--labels", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and message in err and err.count("\n") == 1


def test_bad_parquet_values_name_the_row(
    cli: Callable[..., int], data: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "mine.parquet"
    pq.write_table(
        pa.table(
            {
                "subject_id": [1, 1, 1],
                "prediction_time": ["2100-01-02", "2100-01-03", "2100-01-04"],
                "boolean_value": [1, 0, 2],
            }
        ),
        path,
    )
    assert cli("ehr", "label", str(data), "--labels", str(path)) == 2
    assert f"error: {path}: row 3: boolean_value is not true/false/1/0" in capsys.readouterr().err


def test_a_good_file_is_checked_and_rewritten(
    cli: Callable[..., int], data: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + "1,2100-01-02 06:00:00,1\n2,2100-01-11,0\n")
    assert cli("ehr", "label", str(data), "--labels", str(path)) == 0
    said = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "is valid: 2 prediction times of 2 subjects, 1 positive" in said
    out = tmp_path / "labels.parquet"
    assert cli("ehr", "label", str(data), "--labels", str(path), "-o", str(out)) == 0
    assert pq.read_table(out).num_rows == 2


def test_label_needs_a_task_or_a_labels_file(cli: Callable[..., int], data: Path, capsys) -> None:
    assert cli("ehr", "label", str(data)) == 2
    assert "give --task and -o LABELS" in capsys.readouterr().err
