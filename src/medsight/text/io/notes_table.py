"""Notes tables: CSV (or TSV), JSON Lines and Parquet with one note per row.

Columns ``note_id, subject_id, time, text`` are required and ``kind`` is optional; any other
column (labels such as ``sentiment`` or ``finding:pleural_effusion``, a ``findings`` object,
a ``case_id``) is kept as it stands, one dict per note, so a classifier can read its labels
from the same table. Rows are numbered from 1 for the first data row (a CSV's header is not
a row). ``subject_id`` and ``time`` may be blank in a row (unknown); ``note_id`` and ``text``
may not, and a ``note_id`` may appear once.

CSV is read with the standard library's ``csv`` module rather than pyarrow's reader so that
every value stays a string (``note_id`` ``007`` is not the number 7) and errors can name the
row; Parquet with pyarrow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from medsight.errors import InputError
from medsight.text.io import note as note_limits
from medsight.text.io.decode import decode_text
from medsight.text.io.note import Note, check_note_text
from medsight.text.io.note_time import parse_iso_time

#: the columns a notes table must have
REQUIRED_COLUMNS = ("note_id", "subject_id", "time", "text")
#: the columns that become the `Note`'s fields (the rest are kept as extras)
NOTE_COLUMNS = (*REQUIRED_COLUMNS, "kind")
#: file name endings read as notes tables
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")


class NotesTable(NamedTuple):
    """The notes of a table and, per note, its other columns (``{column: value}``)."""

    notes: list[Note]
    extras: list[dict[str, Any]]


def read_notes_table(path: Path, *, required: Sequence[str] = REQUIRED_COLUMNS) -> NotesTable:
    """Read a notes table.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file.
        required: the columns that must be present (``text`` always is); a table without a
            ``note_id`` column, where allowed, numbers its notes ``<file stem>-<row>``.

    Returns:
        The notes in row order and, aligned with them, each row's other columns.

    Raises:
        InputError: an unreadable or malformed file, a missing required column, a row with
            an empty ``note_id`` or text, a note over the size limit, a time that is not ISO
            8601, a ``note_id`` that repeats an earlier row. Messages name the file, row and
            column, never a value.
    """
    path = Path(path)
    required = tuple(dict.fromkeys(("text", *required)))
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: not a notes table (expected one of {', '.join(TABLE_SUFFIXES)})")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    columns: list[str] | None
    rows: Iterable[tuple[int, dict[str, Any]]]
    if suffix == ".parquet":
        columns, rows = _parquet_rows(path)
    elif suffix in (".jsonl", ".ndjson"):
        columns, rows = _jsonl_rows(path)
    else:
        columns, rows = _csv_rows(path, "\t" if suffix == ".tsv" else ",")
    if columns is not None:
        missing = [c for c in required if c not in columns]
        if missing:
            raise InputError(f"{path}: missing required column(s) {', '.join(missing)}")
    notes: list[Note] = []
    extras: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for number, row in rows:
        where = f"{path}: row {number}"
        if columns is None:
            missing = [c for c in required if c not in row]
            if missing:
                raise InputError(f"{where}: missing required field(s) {', '.join(missing)}")
        note = _note_of_row(row, where, f"{path.stem}-{number}", path.name, number)
        if note.note_id in first_row:
            raise InputError(f"{where}: note_id repeats row {first_row[note.note_id]}")
        first_row[note.note_id] = number
        notes.append(note)
        extras.append({k: v for k, v in row.items() if k not in NOTE_COLUMNS})
    if not notes:
        raise InputError(f"{path}: no notes (the table has no rows)")
    return NotesTable(notes, extras)


def _note_of_row(row: dict[str, Any], where: str, default_id: str, name: str, number: int) -> Note:
    note_id = _identifier(row.get("note_id", default_id), where, "note_id")
    if note_id is None:
        raise InputError(f"{where}: empty note_id")
    text = row.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"{where}: column text is not a string")
    text = check_note_text(text.replace("\r\n", "\n").replace("\r", "\n"), where)
    kind = row.get("kind")
    return Note(
        note_id=note_id,
        text=text,
        subject_id=_identifier(row.get("subject_id"), where, "subject_id"),
        time=parse_iso_time(row.get("time"), f"{where}, column time"),
        kind=(str(kind).strip() or None) if kind is not None else None,
        source=f"{name}: row {number}",
    )


def _identifier(value: Any, where: str, column: str) -> str | None:
    """An id as text (``12`` and ``12.0`` both ``"12"``); None when blank."""
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise InputError(f"{where}: column {column} is not a string or an integer")
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise InputError(f"{where}: column {column} is not a string or an integer")
        value = int(value)
    text = str(value).strip()
    return text or None


def _csv_rows(path: Path, delimiter: str) -> tuple[list[str], Iterable[tuple[int, dict[str, Any]]]]:
    text = decode_text(path.read_bytes(), str(path))
    csv.field_size_limit(max(csv.field_size_limit(), note_limits.MAX_NOTE_CHARS * 4))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error:
        raise InputError(f"{path}: malformed CSV header") from None
    if not header:
        raise InputError(f"{path}: empty file (no header row)")
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{path}: column(s) {', '.join(repeated)} appear more than once")

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error:
                raise InputError(
                    f"{path}: row {number + 1}: malformed CSV (line {reader.line_num})"
                ) from None
            number += 1
            if not values:
                number -= 1
                continue
            if len(values) != len(header):
                raise InputError(
                    f"{path}: row {number}: {len(values)} fields, the header has {len(header)}"
                )
            yield number, dict(zip(header, values, strict=True))

    return header, rows()


def _jsonl_rows(path: Path) -> tuple[None, Iterable[tuple[int, dict[str, Any]]]]:
    text = decode_text(path.read_bytes(), str(path))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        for line_number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            number += 1
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}: row {number} (line {line_number}): not JSON") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}: row {number} (line {line_number}): not a JSON object")
            yield number, row

    return None, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterable[tuple[int, dict[str, Any]]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        raise InputError(f"{path}: cannot be read as Parquet") from None
    return table.column_names, enumerate(table.to_pylist(), start=1)
