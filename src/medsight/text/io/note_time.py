"""A note's time as every reader stores it: a naive UTC ``datetime`` (``Note.time``).

Tables give ISO 8601 strings or timestamps, FHIR gives ``dateTime``/``instant`` values,
HL7 v2 gives ``YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]`` and DICOM a ``DA`` and ``TM`` pair.
"""

from __future__ import annotations

import datetime as dt
import re

from medsight.errors import InputError

_HL7_TS = re.compile(
    r"(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:\.\d{1,4})?(?P<tz>[+-]\d{4})?"
)


def naive_utc(value: dt.datetime | dt.date) -> dt.datetime:
    """``value`` in UTC without a tzinfo (a date is its midnight; a naive time stays as is)."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def parse_iso_time(value: object, where: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time (string, ``datetime`` or ``date``); None when empty.

    Raises:
        InputError: a value that is not a date or date-time (the value is not quoted).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return naive_utc(value)
    if not isinstance(value, str):
        raise InputError(f"{where}: time is not an ISO 8601 date or date-time")
    text = value.strip().replace("Z", "+00:00")
    try:
        return naive_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise InputError(f"{where}: time is not an ISO 8601 date or date-time") from None


def parse_hl7_time(value: str, where: str) -> dt.datetime | None:
    """An HL7 v2 TS/DTM value (``20240131081500+0100``); None when empty.

    Raises:
        InputError: a value that is not an HL7 date-time.
    """
    value = value.strip()
    if not value:
        return None
    match = _HL7_TS.fullmatch(value)
    if match is None:
        raise InputError(f"{where}: not an HL7 date-time (YYYYMMDD[HHMM[SS]][+ZZZZ])")
    year, month, day, hour, minute, second = (
        int(match.group(key) or default)
        for key, default in (("y", 0), ("m", 1), ("d", 1), ("H", 0), ("M", 0), ("S", 0))
    )
    try:
        time = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise InputError(f"{where}: not a valid HL7 date-time") from None
    tz = match.group("tz")
    if tz:
        sign = 1 if tz[0] == "+" else -1
        offset = dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        time = time - offset
    return time


def parse_dicom_time(date: str, time: str, where: str) -> dt.datetime | None:
    """A DICOM ``DA`` (``YYYYMMDD``) and ``TM`` (``HHMMSS.FFFFFF``) pair; None without a date.

    Raises:
        InputError: a date or time DICOM would not write.
    """
    date, time = date.strip(), time.strip()
    if not date:
        return None
    digits = time.split(".")[0]
    if not re.fullmatch(r"\d{8}", date) or not re.fullmatch(r"(\d{2}){0,3}", digits):
        raise InputError(f"{where}: not a DICOM date (YYYYMMDD) and time (HHMMSS)")
    hours, minutes, seconds = (int(digits[i : i + 2] or 0) for i in (0, 2, 4))
    try:
        return dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), hours, minutes, seconds)
    except ValueError:
        raise InputError(f"{where}: not a valid DICOM date and time") from None
