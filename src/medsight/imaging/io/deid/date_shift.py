"""Shift DA and DT values by whole days (the Modified Dates option); TM is never touched.

A value that cannot be read as a full date (empty, partial such as ``2019``, or malformed)
is not shifted: the caller falls back to the Basic Profile action for it, so an unshiftable
date is never kept as it was.
"""

from __future__ import annotations

import datetime as dt

_DT_REST_CHARS = frozenset("0123456789.+-")


def shift_da(value: str, days: int) -> str | None:
    """``YYYYMMDD`` moved by ``days``, or None when ``value`` is not a full DA date."""
    text = value.strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        date = dt.datetime.strptime(text, "%Y%m%d").date() + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def shift_dt(value: str, days: int) -> str | None:
    """A DT value with its date part moved by ``days``; time, fraction and offset unchanged.

    Returns None when ``value`` has less than day precision or a malformed date.
    """
    text = value.strip()
    rest = text[8:]
    if len(text) < 8 or not all(c in _DT_REST_CHARS for c in rest):
        return None
    shifted = shift_da(text[:8], days)
    return None if shifted is None else shifted + rest
