"""Event times from source files: ISO strings and FHIR date/time values to naive UTC.

MEDS times are naive microsecond timestamps. A source whose times carry a zone offset
(``2020-01-01T10:00:00+02:00``, ``...Z``) is converted to UTC and the zone dropped; a source
whose times carry none is taken as written. A file that mixes both cannot be placed on one
clock (the zone-less rows could be local time or UTC), so it is refused rather than guessed.
Dates without a time of day (``2020-01-01``) are midnight; FHIR's partial dates (``2020``,
``2020-03``) are the first day of the year or month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from medsight.errors import InputError

#: a zone offset (or Z) at the end of an ISO time
ZONE_SUFFIX = r"(Z|z|[+-]\d\d:?\d\d)$"
TIME_TYPE = pa.timestamp("us")


@dataclass
class ZoneState:
    """Whether a file's times so far carried a zone, to refuse a file that mixes both."""

    zoned: bool | None = None

    def check(self, zoned: bool, where: str) -> None:
        """Record one time's kind; a kind that differs from the file's first is an error.

        Raises:
            InputError: this time is zoned and earlier ones were not, or the reverse.
        """
        if self.zoned is None:
            self.zoned = zoned
        elif self.zoned != zoned:
            kind = "has a time zone" if zoned else "has no time zone"
            other = "had none" if zoned else "had one"
            raise InputError(
                f"{where}: time {kind} but earlier times in the file {other} "
                "(write every time in UTC, or every time with its offset)"
            )


def parse_time_strings(
    values: pa.Array | pa.ChunkedArray, source: str, first_row: int, state: ZoneState
) -> pa.Array:
    """Parse a string column of ISO times to naive UTC ``timestamp[us]`` (empty -> null).

    Args:
        values: the strings of one chunk.
        source: the file, for messages.
        first_row: the 1-based data row number of ``values[0]`` (for messages).
        state: the file's zone state, carried from chunk to chunk.

    Raises:
        InputError: a time that is not ISO 8601, or zoned and zone-less times in one file;
            the message names the file and row, never the value.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.string())
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), True)
    values = pc.if_else(blank, pa.scalar(None, pa.string()), pc.utf8_trim_whitespace(values))
    zoned = pc.fill_null(pc.match_substring_regex(values, ZONE_SUFFIX), False)
    n_zoned = pc.sum(zoned).as_py() or 0
    n_times = len(values) - values.null_count
    if n_times:
        first_valid = _first_index(pc.invert(blank))
        state.check(bool(zoned[first_valid].as_py()), f"{source}: row {first_row + first_valid}")
        if 0 < n_zoned < n_times:
            target = not state.zoned
            mismatch = pc.and_(pc.invert(blank), pc.equal(zoned, pa.scalar(target)))
            state.check(target, f"{source}: row {first_row + _first_index(mismatch)}")
    try:
        if n_zoned:
            return values.cast(pa.timestamp("us", "UTC")).cast(TIME_TYPE)
        return values.cast(TIME_TYPE)
    except pa.ArrowInvalid:
        pass
    for i, value in enumerate(values.to_pylist()):
        if value is None:
            continue
        try:
            pa.array([value]).cast(pa.timestamp("us", "UTC") if n_zoned else TIME_TYPE)
        except pa.ArrowInvalid:
            raise InputError(
                f"{source}: row {first_row + i}: time is not an ISO 8601 date or date-time "
                "(e.g. 2020-01-31 or 2020-01-31T14:05:00)"
            ) from None
    raise AssertionError("a chunk failed to parse but no row did")  # pragma: no cover


def _first_index(mask: pa.Array) -> int:
    return int(pc.index(mask, pa.scalar(True)).as_py())


def to_naive_utc(value: date | datetime | str | None) -> datetime | None:
    """A FHIR date, dateTime or partial date as a naive UTC datetime (None stays None).

    Raises:
        ValueError: a string that is not a (partial) ISO date.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    if len(text) == 4:
        return datetime(int(text), 1, 1)
    if len(text) == 7:
        return datetime(int(text[:4]), int(text[5:7]), 1)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return to_naive_utc(parsed)
