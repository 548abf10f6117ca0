"""A user's own labels file: read and check it against the MEDS label schema and the dataset.

The file is parquet or CSV with columns ``subject_id`` (integer), ``prediction_time`` (ISO
8601 text or a parquet timestamp/date) and ``boolean_value`` (``true``/``false``/``1``/``0``,
any case, or a parquet bool/integer); other columns are ignored. Times with a zone are
converted to naive UTC, as MEDS times are; a file that mixes zoned and zone-less times is
refused (which zone the zone-less ones are in is a guess medsight will not make).

Every problem is one `InputError` line naming the file and the 1-based data row (the header
is not a row), never a subject's identifier or value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from medsight.ehr.io.meds_dataset import BIRTH, MedsDataset
from medsight.ehr.labels.templates import LABEL_COLUMNS
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path

COLUMNS = ("subject_id", "prediction_time", "boolean_value")
_TRUE = {"true", "1", "1.0"}
_FALSE = {"false", "0", "0.0"}


def read_labels(path: Path, dataset: MedsDataset | None = None) -> pa.Table:
    """The labels in ``path`` as a MEDS label table, sorted by subject and prediction time.

    Args:
        path: a ``.parquet`` or ``.csv`` labels file.
        dataset: when given, every subject must be in it and every prediction time at or
            after the subject's first recorded (non-birth) event; read one shard at a time.

    Raises:
        InputError: the file is missing, unreadable, empty or lacks a column; a row has an
            unparsable subject id or time, a non-boolean value, a zoned time among zone-less
            ones (or the reverse), repeats a subject and time with another value, names a
            subject not in ``dataset``, or predicts before that subject's first event.
    """
    path = Path(path)
    table = _read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (a labels file has "
            f"{', '.join(COLUMNS)})"
        )
    if table.num_rows == 0:
        raise InputError(f"{path}: no labels (the file has a header but no rows)")
    subjects = _subject_ids(table.column("subject_id"), path)
    times = _times(table.column("prediction_time"), path)
    values = _booleans(table.column("boolean_value"), path)
    labels = pa.table(
        {"subject_id": subjects, "prediction_time": times, "boolean_value": values},
        schema=LABEL_COLUMNS,
    )
    labels, rows = _without_repeats(labels, path)
    if dataset is not None:
        _check_against(labels, rows, dataset, path)
    return labels.sort_by([("subject_id", "ascending"), ("prediction_time", "ascending")])


def write_label_table(labels: pa.Table, out: Path) -> None:
    """Write a label table to ``out`` (``.parquet`` or ``.csv``), atomically.

    Raises:
        InputError: ``out`` is neither .parquet nor .csv.
    """
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{out}: labels are written as .parquet or .csv")
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            pq.write_table(labels.cast(LABEL_COLUMNS), tmp)
        else:
            pacsv.write_csv(labels.cast(LABEL_COLUMNS), tmp)


# -- reading -------------------------------------------------------------------------------
def _read_table(path: Path) -> pa.Table:
    if not path.is_file():
        raise InputError(f"{path}: no such labels file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in COLUMNS},
                    strings_can_be_null=True,
                ),
            )
    except (OSError, pa.ArrowInvalid) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{path}: not a readable labels file ({first})") from None
    raise InputError(f"{path}: a labels file is .parquet or .csv")


def _bad(path: Path, index: int, what: str) -> InputError:
    return InputError(f"{path}: row {index + 1}: {what}")


def _first_null(column: pa.ChunkedArray) -> int | None:
    if not column.null_count:
        return None
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])


def _subject_ids(column: pa.ChunkedArray, path: Path) -> pa.Array:
    null = _first_null(column)
    if null is not None:
        raise _bad(path, null, "subject_id is empty")
    if pa.types.is_integer(column.type):
        return column.combine_chunks().cast(pa.int64())
    out = []
    for index, value in enumerate(column.to_pylist()):
        try:
            number = float(value) if isinstance(value, float) else int(str(value).strip())
        except ValueError:
            raise _bad(path, index, "subject_id is not an integer") from None
        if isinstance(number, float) and not number.is_integer():
            raise _bad(path, index, "subject_id is not an integer")
        out.append(int(number))
    return pa.array(out, pa.int64())


def _times(column: pa.ChunkedArray, path: Path) -> pa.Array:
    null = _first_null(column)
    if null is not None:
        raise _bad(path, null, "prediction_time is empty")
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        # a zoned parquet timestamp stores UTC instants: dropping the zone keeps UTC
        naive = column.combine_chunks()
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            naive = naive.cast(pa.timestamp(kind.unit))
        return naive.cast(pa.timestamp("us"))
    out: list[dt.datetime] = []
    zoned_row: tuple[bool, int] | None = None
    for index, value in enumerate(column.to_pylist()):
        text = str(value).strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _bad(path, index, "prediction_time is not an ISO 8601 time") from None
        zoned = moment.tzinfo is not None
        if zoned_row is None:
            zoned_row = (zoned, index)
        elif zoned != zoned_row[0]:
            first = "a zone" if zoned_row[0] else "no zone"
            raise _bad(
                path,
                index,
                f"prediction_time {'has' if zoned else 'lacks'} a time zone but row "
                f"{zoned_row[1] + 1} has {first} (give every time a zone, or none)",
            )
        if zoned:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        out.append(moment)
    return pa.array(out, pa.timestamp("us"))


def _booleans(column: pa.ChunkedArray, path: Path) -> pa.Array:
    null = _first_null(column)
    if null is not None:
        raise _bad(path, null, "boolean_value is empty")
    if pa.types.is_boolean(column.type):
        return column.combine_chunks()
    out = []
    for index, value in enumerate(column.to_pylist()):
        text = str(value).strip().lower()
        if text in _TRUE:
            out.append(True)
        elif text in _FALSE:
            out.append(False)
        else:
            raise _bad(path, index, "boolean_value is not true/false/1/0")
    return pa.array(out, pa.bool_())


def _without_repeats(labels: pa.Table, path: Path) -> tuple[pa.Table, list[int]]:
    """Drop exact repeats of a (subject, time, value) row; refuse a repeat with another value.

    Returns:
        The labels and, for each, its 0-based row in the file.
    """
    frame = pl.from_arrow(labels)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_row_index("row")
    keys = ["subject_id", "prediction_time"]
    first = frame.group_by(keys).agg(
        pl.col("row").min().alias("first_row"), pl.col("boolean_value").first().alias("first")
    )
    clash = (
        frame.join(first, on=keys)
        .filter(pl.col("boolean_value") != pl.col("first"))
        .sort("row")
        .head(1)
    )
    if clash.height:
        row: dict[str, Any] = clash.row(0, named=True)
        raise _bad(
            path,
            int(row["row"]),
            f"repeats the subject and prediction_time of row {int(row['first_row']) + 1} "
            "with another boolean_value",
        )
    unique = frame.unique(subset=keys, keep="first", maintain_order=True)
    rows = unique.get_column("row").to_list()
    return unique.drop("row").to_arrow().cast(LABEL_COLUMNS), rows


def _check_against(labels: pa.Table, rows: list[int], dataset: MedsDataset, path: Path) -> None:
    """Every subject is in ``dataset`` and predicted at or after its first recorded event."""
    wanted = pa.array(np.unique(labels.column("subject_id").to_numpy()))
    seen: set[int] = set()
    first_event: dict[int, int] = {}
    for shard in dataset.shard_paths():
        events = dataset.read_shard(shard, columns=["subject_id", "time", "code"])
        events = events.filter(pc.is_in(events.column("subject_id"), wanted))
        if not events.num_rows:
            continue
        frame = pl.from_arrow(events)
        assert isinstance(frame, pl.DataFrame)
        seen.update(frame.get_column("subject_id").unique().to_list())
        firsts = (
            frame.filter(pl.col("time").is_not_null() & (pl.col("code") != BIRTH))
            .group_by("subject_id")
            .agg(pl.col("time").min().cast(pl.Datetime("us")).dt.epoch("us").alias("first"))
        )
        first_event.update(
            zip(firsts["subject_id"].to_list(), firsts["first"].to_list(), strict=True)
        )
    subjects = labels.column("subject_id").to_pylist()
    times = labels.column("prediction_time").cast(pa.int64()).to_pylist()
    for index, subject, time in zip(rows, subjects, times, strict=True):
        if subject not in seen:
            raise _bad(path, index, f"subject_id is not in {dataset.root}")
        first = first_event.get(subject)
        if first is None:
            raise _bad(path, index, "the subject has no timed events to predict from")
        if time < first:
            raise _bad(path, index, "prediction_time is before any of the subject's data")
