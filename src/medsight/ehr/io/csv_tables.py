"""Source CSV tables read in chunks, with errors that name the file and the data row.

Every CSV importer reads through here: a table is found by name in an export folder whatever
its case and compression (``PATIENTS.csv.gz``, ``patients.csv``), read block by block with
pyarrow (memory is one block, not the file), every column as text, and converted column by
column so that a bad value is reported as ``FILE: row N: ...`` (N = 1-based data row, the
header not counted) without echoing the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from medsight.errors import InputError

#: bytes per block read (rows per chunk follow from the row width)
BLOCK_BYTES = 1 << 22
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")


def find_table(folder: Path, name: str) -> Path | None:
    """The file of table ``name`` in an export folder (any case, compressed or not)."""
    wanted = {f"{name}{suffix}".lower() for suffix in CSV_SUFFIXES}
    matches = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower() in wanted)
    return matches[0] if matches else None


def require_table(folder: Path, name: str) -> Path:
    """`find_table`, or an InputError naming the table that is missing.

    Raises:
        InputError: no file for the table.
    """
    path = find_table(folder, name)
    if path is None:
        raise InputError(f"{folder}: no {name}.csv or {name}.csv.gz (a required table)")
    return path


@dataclass(frozen=True)
class Chunk:
    """One block of rows: column name (lower case) -> text, and its first data row (1-based)."""

    source: str
    first_row: int
    table: pa.Table

    def __len__(self) -> int:
        return self.table.num_rows

    def text(self, name: str) -> pa.Array:
        """A column as trimmed text, empty -> null (null when the column is absent)."""
        if name not in self.table.column_names:
            return pa.nulls(len(self), pa.string())
        column = pc.utf8_trim_whitespace(self.table.column(name).combine_chunks())
        return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)

    def integers(self, name: str, *, required: bool = True) -> pa.Array:
        """A column as int64 (``12``, ``12.0``).

        Raises:
            InputError: a value that is not an integer, or a blank one in a required column.
        """
        column = self.text(name)
        if required and column.null_count:
            self.fail(_first(column.is_null()), f"{name} is empty")
        try:
            return column.cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        try:
            floats = column.cast(pa.float64())
        except pa.ArrowInvalid:
            floats = None
        if floats is not None:
            whole = pc.fill_null(pc.equal(pc.floor(floats), floats), True)
            if pc.all(whole).as_py():
                return floats.cast(pa.int64())
        for i, value in enumerate(column.to_pylist()):
            if value is None:
                continue
            try:
                float_value = float(value)
                if float_value.is_integer():
                    continue
            except ValueError:
                pass
            self.fail(i, f"{name} is not an integer")
        raise AssertionError("unreachable")  # pragma: no cover

    def floats(self, name: str) -> pa.Array:
        """A column as float64 (blank -> null).

        Raises:
            InputError: a value that is not a number, or NaN/infinite.
        """
        column = self.text(name)
        try:
            values = column.cast(pa.float64())
        except pa.ArrowInvalid:
            for i, value in enumerate(column.to_pylist()):
                if value is None:
                    continue
                try:
                    float(value)
                except ValueError:
                    self.fail(i, f"{name} is not a number")
            raise AssertionError("unreachable") from None  # pragma: no cover
        array = values.to_numpy(zero_copy_only=False)
        bad = ~np.isfinite(array) & ~values.is_null().to_numpy(zero_copy_only=False)
        if bad.any():
            self.fail(int(np.flatnonzero(bad)[0]), f"{name} is NaN or infinite")
        return values

    def lenient_floats(self, name: str) -> pa.Array:
        """A column as float64 where anything that is not a finite number becomes null.

        For source columns that mix numbers and text by design (a lab's ``labresult``
        beside its ``labresulttext``), where a text value is not an error.
        """
        column = self.text(name)
        try:
            values = column.cast(pa.float64())
        except pa.ArrowInvalid:
            parsed = []
            for value in column.to_pylist():
                try:
                    parsed.append(float(value) if value is not None else None)
                except ValueError:
                    parsed.append(None)
            values = pa.array(parsed, pa.float64())
        finite = pc.fill_null(pc.is_finite(values), False)
        return pc.if_else(finite, values, pa.scalar(None, pa.float64()))

    def fail(self, index: int, what: str) -> None:
        """Raise the InputError for row ``index`` of this chunk."""
        raise InputError(f"{self.source}: row {self.first_row + index}: {what}")


def _first(mask: pa.Array) -> int:
    return int(pc.index(mask, pa.scalar(True)).as_py())


def read_chunks(
    path: Path,
    required: Sequence[str] = (),
    *,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[Chunk]:
    """Stream a CSV table in blocks, every column as text, header names lower-cased.

    Args:
        path: the CSV file (gzip and other compressions by suffix).
        required: column names (lower case) the table must have.
        block_bytes: bytes per block.

    Raises:
        InputError: an unreadable file, a missing column, or a malformed line.
    """
    source = str(path)
    try:
        stream = pa.input_stream(str(path), compression="detect")
        header_reader = pacsv.open_csv(
            stream, read_options=pacsv.ReadOptions(block_size=block_bytes)
        )
        names = header_reader.schema.names
        header_reader.close()
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{source}: not a readable CSV file ({_reason(exc)})") from None
    lowered = [name.strip().lower() for name in names]
    missing = [name for name in required if name not in lowered]
    if missing:
        raise InputError(f"{source}: header: missing column(s) {', '.join(missing)}")
    try:
        reader = pacsv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pacsv.ReadOptions(
                block_size=block_bytes, column_names=lowered, skip_rows=1
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(lowered, pa.string()),
                strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{source}: not a readable CSV file ({_reason(exc)})") from None
    row = 1
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(
                f"{source}: row {row} or later: malformed CSV ({_reason(exc)})"
            ) from None
        if batch.num_rows:
            yield Chunk(source, row, pa.Table.from_batches([batch]))
            row += batch.num_rows


def _reason(exc: Exception) -> str:
    """The first clause of a pyarrow error, without the offending line's text (may hold PHI)."""
    text = str(exc).split("\n")[0]
    if "parse error" in text.lower():
        return ": ".join(text.split(": ")[:2])
    return text.split(":")[-1].strip() or text
