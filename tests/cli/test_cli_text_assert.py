"""`medsight text assert FILE.csv -o OUT.csv`: rows and columns kept, context added, bad input."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsight.cli.main import app, main
from medsight.errors import InputError

ROWS = [
    ["id", "text", "concept", "source"],
    ["1", "No pleural effusion or pneumothorax.", "pneumothorax", "a"],
    ["2", "Pneumonia cannot be excluded.", "Pneumonia", "b"],
    ["3", "History of pneumothorax, now resolved.", "pneumothorax", "c"],
    ["4", "Mother had lung cancer.", "lung cancer", "d"],
    ["5", "Return if you develop chest pain.", "chest pain", "e"],
    ["6", "There is no change in the left pleural effusion.", "pleural effusion", "f"],
]


def _write(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["text", "assert", *args])


def test_every_row_and_column_is_kept_and_context_added(tmp_path: Path) -> None:
    out = tmp_path / "out" / "asserted.csv"
    result = _invoke(str(_write(tmp_path / "in.csv", ROWS)), "-o", str(out))
    assert result.exit_code == 0, result.output
    got = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert got[0] == ROWS[0] + ["negation", "certainty", "temporality", "experiencer"]
    assert [row[:4] for row in got] == ROWS
    assert [row[4:] for row in got[1:]] == [
        ["negated", "certain", "recent", "patient"],
        ["affirmed", "uncertain", "recent", "patient"],
        ["negated", "certain", "recent", "patient"],
        ["affirmed", "certain", "recent", "other"],
        ["affirmed", "certain", "hypothetical", "patient"],
        ["affirmed", "certain", "recent", "patient"],
    ]
    assert "asserted 6 rows" in result.output
    assert "pneumothorax" not in result.output  # nothing from the notes is printed


def test_gold_columns_of_the_same_name_are_kept_and_predictions_prefixed(tmp_path: Path) -> None:
    rows = [["text", "concept", "negation"], ["No effusion.", "effusion", "GOLD"]]
    out = tmp_path / "o.csv"
    assert _invoke(str(_write(tmp_path / "g.csv", rows)), "-o", str(out)).exit_code == 0
    header, row = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert header == ["text", "concept", "negation", "predicted_negation", "certainty",
                      "temporality", "experiencer"]  # fmt: skip
    assert row[2:4] == ["GOLD", "negated"]


def test_a_missing_concept_is_one_line_naming_the_row_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*ROWS[:3], ["9", "Patient Zelda Quixote has no effusion.", "pneumothorax", "z"]]
    source, out = _write(tmp_path / "in.csv", rows), tmp_path / "out.csv"
    monkeypatch.setattr(sys, "argv", ["medsight", "text", "assert", str(source), "-o", str(out)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {source}: row 3: concept not found in text\n"
    assert "Zelda" not in err and not out.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,note\nNo effusion.,effusion\n", "no 'concept' column"),
        (b"concept\neffusion\n", "no 'text' column"),
        (b"text,concept\nNo effusion.,effusion,extra\n", "row 1 has 3 fields, the header has 2"),
        (b"text,concept\n   ,effusion\n", "row 1: empty note"),
        (b"text,concept\nNo effusion.,\n", "row 1: empty concept"),
        (b"text,concept\n", "no rows under the header"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00", "binary"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    result = _invoke(str(source), "-o", str(tmp_path / "out.csv"))
    assert isinstance(result.exception, InputError)
    assert str(result.exception).startswith(str(source))
    assert message in str(result.exception)
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_file_and_utf16_input(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.csv"))
    assert isinstance(result.exception, InputError) and "no such file" in str(result.exception)
    source = _write(tmp_path / "u16.csv", [["text", "concept"], ["Ödem? No effusion.", "effusion"]],
                    encoding="utf-16")  # fmt: skip
    out = tmp_path / "o.csv"
    assert _invoke(str(source), "-o", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("Ödem? No effusion.,")
