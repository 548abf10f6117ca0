"""Notes tables (CSV, JSONL, Parquet): notes with their extra columns; bad rows named."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medsight.errors import InputError
from medsight.text.io.notes_table import read_notes_table

ROWS = [
    {
        "note_id": "007",
        "subject_id": "p1",
        "time": "2024-01-02T10:00:00+01:00",
        "text": "No effusion,\nmulti-line.",
        "kind": "radiology",
        "sentiment": "neutral",
        "finding:pneumothorax": "absent",
    },
    {
        "note_id": "n2",
        "subject_id": "",
        "time": "",
        "text": "Second note.",
        "kind": "",
        "sentiment": "positive",
        "finding:pneumothorax": "present",
    },
]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


WRITERS = {".csv": _write_csv, ".jsonl": _write_jsonl, ".parquet": _write_parquet}


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_notes_and_extra_columns_from_each_format(tmp_path: Path, suffix: str) -> None:
    path = WRITERS[suffix](tmp_path / f"notes{suffix}", ROWS)
    notes, extras = read_notes_table(path)
    assert [n.note_id for n in notes] == ["007", "n2"]  # "007" stays a string
    first, second = notes
    assert first.text == "No effusion,\nmulti-line."
    assert first.subject_id == "p1" and first.kind == "radiology"
    assert first.time == dt.datetime(2024, 1, 2, 9, 0)  # naive UTC
    assert second.subject_id is None and second.time is None and second.kind is None
    assert extras == [
        {"sentiment": "neutral", "finding:pneumothorax": "absent"},
        {"sentiment": "positive", "finding:pneumothorax": "present"},
    ]
    assert first.source == f"notes{suffix}: row 1"


def test_jsonl_keeps_nested_values_and_numeric_ids(tmp_path: Path) -> None:
    row = {"note_id": 5, "subject_id": 12, "time": None, "text": "t", "findings": {"a": "present"}}
    notes, extras = read_notes_table(_write_jsonl(tmp_path / "r.jsonl", [row]))
    assert (notes[0].note_id, notes[0].subject_id) == ("5", "12")
    assert extras == [{"findings": {"a": "present"}}]


def test_parquet_timestamps_and_float_ids(tmp_path: Path) -> None:
    table = pa.table(
        {
            "note_id": ["a"],
            "subject_id": pa.array([3.0]),
            "time": pa.array([dt.datetime(2020, 5, 1, 8)], pa.timestamp("us", tz="UTC")),
            "text": ["x"],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    [note] = read_notes_table(tmp_path / "t.parquet").notes
    assert (note.subject_id, note.time) == ("3", dt.datetime(2020, 5, 1, 8))


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "subject_id"} for r in ROWS]
    with pytest.raises(InputError, match=r"notes\.csv: missing required column\(s\) subject_id"):
        read_notes_table(_write_csv(tmp_path / "notes.csv", rows))
    with pytest.raises(InputError, match=r"notes\.jsonl: row 1: missing required field"):
        read_notes_table(_write_jsonl(tmp_path / "notes.jsonl", rows))


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_an_empty_text_names_its_row(tmp_path: Path, suffix: str) -> None:
    rows = [ROWS[0], {**ROWS[1], "text": "   "}]
    with pytest.raises(InputError, match=rf"notes{suffix}: row 2: empty note"):
        read_notes_table(WRITERS[suffix](tmp_path / f"notes{suffix}", rows))


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_a_repeated_note_id_names_both_rows_not_the_id(tmp_path: Path, suffix: str) -> None:
    rows = [ROWS[0], ROWS[1], {**ROWS[1], "note_id": "007"}]
    with pytest.raises(InputError, match=r"row 3: note_id repeats row 1$") as err:
        read_notes_table(WRITERS[suffix](tmp_path / f"notes{suffix}", rows))
    assert "007" not in str(err.value)


def test_a_bad_time_names_row_and_column_not_the_value(tmp_path: Path) -> None:
    rows = [ROWS[0], {**ROWS[1], "time": "Jan 3rd, Mr Smith"}]
    with pytest.raises(InputError, match=r"row 2, column time: time is not an ISO") as err:
        read_notes_table(_write_csv(tmp_path / "notes.csv", rows))
    assert "Smith" not in str(err.value)


def test_a_note_over_the_limit_names_its_row(tmp_path: Path, small_note_limit: int) -> None:
    rows = [ROWS[0], {**ROWS[1], "text": "z" * (small_note_limit + 1)}]
    with pytest.raises(InputError, match="row 2: 101 characters is over the limit"):
        read_notes_table(_write_csv(tmp_path / "notes.csv", rows))


def test_garbled_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"note_id": "a", "text": "x"}\n{not json\n')
    with pytest.raises(InputError, match=r"bad\.jsonl: row 2 \(line 2\): not JSON"):
        read_notes_table(tmp_path / "bad.jsonl", required=("note_id", "text"))
    (tmp_path / "ragged.csv").write_text("note_id,subject_id,time,text\na,p,,x,extra\n")
    with pytest.raises(InputError, match=r"ragged\.csv: row 1: 5 fields, the header has 4"):
        read_notes_table(tmp_path / "ragged.csv")
    (tmp_path / "bin.parquet").write_bytes(b"\x00\x01not parquet")
    with pytest.raises(InputError, match="cannot be read as Parquet"):
        read_notes_table(tmp_path / "bin.parquet")
    (tmp_path / "only_header.csv").write_text("note_id,subject_id,time,text\n")
    with pytest.raises(InputError, match="no notes"):
        read_notes_table(tmp_path / "only_header.csv")


def test_a_table_without_note_ids_numbers_its_rows_when_allowed(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "labels.csv", [{"subject_id": "p", "text": "t", "y": "1"}])
    notes, extras = read_notes_table(path, required=("subject_id", "text"))
    assert notes[0].note_id == "labels-1" and extras == [{"y": "1"}]
