"""Move dates and times by whole days, keeping their precision, time of day and zone.

FHIR values (``date``, ``dateTime``, ``instant``) are shifted as text: the calendar date
moves, the rest (time, fraction, ``Z`` or ``+hh:mm``) is kept as written, so the value stays
valid FHIR of the same type. A value with less than day precision (``2019``, ``2019-04``)
cannot be moved by days and is reported as unshiftable: the caller removes it, so no date
is ever kept as it was. MEDS times (naive UTC) are parsed and re-written in ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import re

# YYYY-MM-DD, then optionally a time (seconds, fraction) and a zone
_FULL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})((?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:\d{2})?)$"
)
_PARTIAL = re.compile(r"^\d{4}(?:-\d{2})?$")


def is_full_date(value: str) -> bool:
    """True for a FHIR date, dateTime or instant with at least day precision."""
    return _FULL.match(value.strip()) is not None


def is_partial_date(value: str) -> bool:
    """True for a FHIR date of year or year-month precision (``2019``, ``2019-04``)."""
    return _PARTIAL.match(value.strip()) is not None


def shift_fhir_date(value: str, days: int) -> str | None:
    """``value`` with its calendar date moved by ``days``; None when it is not shiftable.

    Returns None for partial dates and anything that is not a FHIR date/dateTime/instant.
    """
    match = _FULL.match(value.strip())
    if match is None:
        return None
    year, month, day, rest = match.groups()
    try:
        date = dt.date(int(year), int(month), int(day)) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{date.year:04d}-{date.month:02d}-{date.day:02d}{rest}"


def parse_meds_time(value: str) -> dt.datetime | None:
    """A MEDS time (ISO 8601 date or date-time) as naive UTC; None when unreadable.

    A zoned time is converted to UTC first (MEDS times carry no zone).
    """
    text = value.strip()
    if not text or not text[:4].isdigit():
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at


def shift_meds_time(value: str, days: int) -> str | None:
    """A MEDS time moved by ``days``, as naive ISO 8601; None when unreadable."""
    at = parse_meds_time(value)
    if at is None:
        return None
    try:
        return (at + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        return None
