"""``medsight ehr import --from events-csv``: streamed, splits honoured, bad input in one line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from medsight.cli.main import main
from medsight.ehr.io import csv_tables
from medsight.ehr.io.importers import import_source

HEADER = "subject_id,time,code,numeric_value,text_value\n"
GOOD = (
    "1,1950-01-01,MEDS_BIRTH,,\n"
    "1,,SEX//F,,\n"
    "1,2020-01-01 10:00:00,LOINC//4548-4,7.1,\n"
    "2,1960-05-05,MEDS_BIRTH,,\n"
    "2,2020-02-01T08:00:00,ICD10CM//E11.9,,new\n"
)


@dataclass
class Result:
    exit_code: int
    output: str


def run_cli(monkeypatch, capsys, *args: str) -> Result:
    """``medsight ARGS`` through the console entry point (errors become exit codes there)."""
    monkeypatch.setattr(sys, "argv", ["medsight", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out + captured.err)


@pytest.fixture
def cli(monkeypatch, capsys):
    return lambda *args: run_cli(monkeypatch, capsys, *args)


def _import(cli, tmp_path: Path, body: str, *extra: str) -> tuple[Result, Path]:
    source = tmp_path / "events.csv"
    source.write_text(body)
    out = tmp_path / "meds"
    return cli("ehr", "import", str(source), "-o", str(out), "--from", "events-csv", *extra), out


def test_good_file_imports(cli, tmp_path, read_events, checked):
    result, out = _import(cli, tmp_path, HEADER + GOOD)
    assert result.exit_code == 0, result.output
    assert checked(out) == {"subjects": 2, "events": 5, "codes": 4}
    events = read_events(out)
    assert events.filter(pl.col("code") == "LOINC//4548-4")["numeric_value"].to_list() == [
        pytest.approx(7.1)
    ]


def test_splits_file_is_honoured(cli, tmp_path):
    splits = tmp_path / "splits.csv"
    splits.write_text("subject_id,split\n1,held_out\n2,tuning\n")
    result, out = _import(cli, tmp_path, HEADER + GOOD, "--splits", str(splits))
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out / "metadata" / "subject_splits.parquet")
    assert dict(zip(table["subject_id"], table["split"], strict=True)) == {
        1: "held_out",
        2: "tuning",
    }
    assert (out / "data" / "held_out").is_dir() and not (out / "data" / "train").exists()


BAD = {
    "unparsable time": ("3,yesterday,LOINC//4548-4,7,\n", "row 6", "not an ISO 8601"),
    "zoned after zoneless": (
        "3,2020-01-01T10:00:00+02:00,LOINC//4548-4,7,\n",
        "row 6",
        "time zone",
    ),
    "no vocabulary": ("3,2020-01-01,HbA1c,7,\n", "row 6", "no vocabulary"),
    "NaN value": ("3,2020-01-01,LOINC//4548-4,nan,\n", "row 6", "NaN or infinite"),
    "infinite value": ("3,2020-01-01,LOINC//4548-4,-inf,\n", "row 6", "NaN or infinite"),
    "text value": ("3,2020-01-01,LOINC//4548-4,high,\n", "row 6", "not a number"),
    "subject not an integer": ("x3,2020-01-01,LOINC//4548-4,7,\n", "row 6", "not an integer"),
    "conflicting births": ("1,1951-01-01,MEDS_BIRTH,,\n", "row 6", "row 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rows_give_one_line_and_no_folder(cli, tmp_path, case):
    line, row, what = BAD[case]
    result, out = _import(cli, tmp_path, HEADER + GOOD + line)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: ")
    assert "events.csv" in message and row in message and what in message
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".meds")]


def test_missing_column_is_named(cli, tmp_path):
    result, out = _import(cli, tmp_path, "subject_id,time,code\n1,2020-01-01,LOINC//1-1\n")
    assert result.exit_code == 2
    assert "missing column(s) numeric_value" in result.output
    assert not out.exists()


def test_zoned_times_become_utc(cli, tmp_path, read_events):
    body = (
        HEADER
        + "1,2020-01-01T10:00:00+02:00,LOINC//4548-4,7,\n1,2020-01-02T00:00:00Z,ICD10CM//E11.9,,\n"
    )
    result, out = _import(cli, tmp_path, body)
    assert result.exit_code == 0, result.output
    times = read_events(out).sort("time")["time"].dt.strftime("%Y-%m-%d %H:%M").to_list()
    assert times == ["2020-01-01 08:00", "2020-01-02 00:00"]


def test_unknown_kind_lists_the_kinds(cli, tmp_path):
    result = cli("ehr", "import", str(tmp_path), "-o", str(tmp_path / "o"), "--from", "hl7")
    assert result.exit_code == 2
    assert "events-csv" in result.output and "fhir" in result.output


def test_reads_in_chunks_and_counts_rows_across_them(tmp_path, monkeypatch):
    """Memory is one block, not the file: a small block makes many chunks, rows still exact."""
    rows = [f"{s},2020-01-{1 + s % 28:02d},LOINC//2345-7,{100 + s}\n" for s in range(1, 3001)]
    source = tmp_path / "events.csv"
    source.write_text(HEADER.replace(",text_value", "") + "".join(rows))
    chunks = list(csv_tables.read_chunks(source, ("subject_id",), block_bytes=4096))
    assert len(chunks) > 10
    assert [c.first_row for c in chunks[:2]] == [1, 1 + len(chunks[0])]
    assert sum(len(c) for c in chunks) == 3000
    # a bad value deep in the file is reported at its row, found in a later chunk
    rows[2499] = "2500,2020-01-01,LOINC//2345-7,oops\n"
    source.write_text(HEADER.replace(",text_value", "") + "".join(rows))
    monkeypatch.setattr(csv_tables.read_chunks, "__kwdefaults__", {"block_bytes": 4096})
    with pytest.raises(Exception, match=r"row 2500: numeric_value is not a number"):
        import_source(source, tmp_path / "out", "events-csv")
    assert not (tmp_path / "out").exists()
