"""The date shapes the rules find and the surrogates rewrite, and the shift that keeps a shape.

One table serves both: each shape is a bare pattern (the part that is masked) with named
groups ``y`` (2 or 4 digits), ``m`` (month number), ``mon`` (month name), ``d`` (day) and
``sfx`` (ordinal suffix), plus optional context that must surround it ("on the 3rd", "seen
3/14"). A shifted date is written back group by group, so "March 1, 2024" stays "Month d,
yyyy", "3/1/24" stays unpadded with a two-digit year and "01-MAR-2024" stays upper case.
US order (month first) for slashes and dashes unless the first number cannot be a month;
day first for dots ("05.07.1951" is 5 July).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_D = r"(?P<d>0?[1-9]|[12]\d|3[01])"
_SFX = r"(?P<sfx>st|nd|rd|th)"
_M = r"(?P<m>0?[1-9]|1[0-2])"
_Y4 = r"(?P<y>(?:1[89]|2[0-2])\d{2})"
_Y = r"(?P<y>(?:1[89]|2[0-2])\d{2}|\d{2})"
#: a month name; only an abbreviation takes a dot ("Mar. 3", but "on the 12th of March.")
_MON = (
    r"(?P<mon>(?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december)(?!\.\w)|(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?)"
)
#: English month names whatever the locale (calendar.month_name follows setlocale)
_MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July")
_MONTHS += ("August", "September", "October", "November", "December")
#: words before a bare day/month ("3/14") or ordinal day ("the 3rd") that make it a date
_DATE_CONTEXT = (
    r"(?:on|since|from|until|till|through|thru|to|dated?|by|of|before|after|seen|admitted"
    r"|discharged|visit|surgery|born|DOB|D\.O\.B\.|appointment|appt|due|starting|started"
    r"|stopped|(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?,?)"
)


@dataclass(frozen=True)
class DateShape:
    """One way of writing a date.

    Attributes:
        name: for tests and debugging.
        bare: the masked part alone (matched in full when shifting).
        find: ``bare`` in its required context, the masked part as group ``date``.
    """

    name: str
    bare: re.Pattern[str]
    find: re.Pattern[str]


def _shape(name: str, bare: str, before: str = "", after: str = "") -> DateShape:
    flags = re.IGNORECASE
    return DateShape(
        name,
        re.compile(bare, flags),
        re.compile(f"{before}(?P<date>{bare}){after}", flags),
    )


_NOT_DIGIT_BEFORE = r"(?<![\w./-])"
_NOT_DIGIT_AFTER = r"(?![\w/-]|\.\d)"

DATE_SHAPES: tuple[DateShape, ...] = (
    _shape("iso", rf"{_Y4}(?P<s>[-/.]){_M}(?P=s){_D}", _NOT_DIGIT_BEFORE, r"(?![\d/-]|\.\d)"),
    _shape("mdy", rf"{_M}(?P<s>[-/]){_D}(?P=s){_Y}", _NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER),
    # dots are the European habit: day first, unless the second number cannot be a month
    _shape("dmy-dots", rf"{_D}\.{_M}\.{_Y4}", _NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER),
    _shape("mdy-dots", rf"{_M}\.{_D}\.{_Y4}", _NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER),
    _shape(
        "dmy",
        rf"(?P<d>1[3-9]|2\d|3[01])(?P<s>[-/.]){_M}(?P=s){_Y}",
        _NOT_DIGIT_BEFORE,
        _NOT_DIGIT_AFTER,
    ),
    _shape("dmy-name", rf"{_D}(?P<s>[-\s]?){_MON}(?P=s),?{_Y}", r"(?<![\w])", r"(?!\w)"),
    _shape("my", rf"{_M}[/-]{_Y4}", _NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER),
    _shape("mon-d-y", rf"{_MON}\s+{_D}{_SFX}?(?:,\s*|\s+){_Y4}", r"\b", r"(?!\w)"),
    _shape("d-mon-y", rf"{_D}{_SFX}?\s+(?:of\s+)?{_MON},?\s+{_Y4}", r"\b", r"(?!\w)"),
    _shape(
        "mon-d",
        rf"{_MON}\s+{_D}{_SFX}?",
        r"\b",
        r"(?![\w:]|\.\d|\s*(?:mg|mcg|g|ml|mL|cm|mm|%|units?|x\b|-\d|\d))",
    ),
    _shape("d-mon", rf"{_D}{_SFX}?\s+(?:of\s+)?{_MON}", r"\b", r"(?!\w)"),
    _shape("mon-y", rf"{_MON},?\s+(?:of\s+)?{_Y4}", r"\b", r"(?!\w)"),
    _shape("md", rf"{_M}/{_D}", rf"\b{_DATE_CONTEXT}:?\s+", r"(?![\w/-]|\.\d)"),
    _shape("ordinal", rf"{_D}{_SFX}", rf"\b{_DATE_CONTEXT}\s+the\s+", r"(?!\w)"),
    # a year of birth: even a year alone can give an age over 89 away
    _shape(
        "birth-year",
        _Y4,
        r"\b(?:born|birth|b\.|DOB|D\.O\.B\.)[ \t:]+(?:in[ \t]+|on[ \t]+)?",
        r"(?![\w/-]|\.\d)",
    ),
    # a month named alone after a time word ("in March", "since October"); not "May"
    _shape(
        "mon",
        r"(?P<mon>January|February|March|April|June|July|August|September|October|November"
        r"|December|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?)",
        r"\b(?:in|on|since|until|till|by|during|early|late|mid|next|last|this|of|before|after"
        r"|through|from|to|around|in\s+early|in\s+late|in\s+mid)[\s-]+",
        r"(?![\w-])",
    ),
)


def find_dates(text: str) -> list[tuple[int, int]]:
    """Character spans of every date in ``text`` (overlaps allowed; merging keeps the widest).

    A month name counts only when capitalised ("May 3", not "may 3 times").
    """
    spans = []
    for shape in DATE_SHAPES:
        for match in shape.find.finditer(text):
            mon = match.group("mon") if "mon" in shape.find.groupindex else None
            if mon is not None and not mon[0].isupper():
                continue
            spans.append(match.span("date"))
    return spans


def shift_date(original: str, days: int) -> str | None:
    """``original`` (one date, as `find_dates` found it) moved by ``days``, in the same shape.

    Returns:
        The shifted date, or None when ``original`` is no valid date in a known shape (the
        caller then writes a tag).
    """
    for shape in DATE_SHAPES:
        match = shape.bare.fullmatch(original)
        if match is None:
            continue
        moved = _moved(match, days)
        if moved is None:
            continue
        return _rewrite(match, moved)
    return None


def _moved(match: re.Match[str], days: int) -> dt.date | None:
    groups = match.groupdict()
    if groups.get("mon"):
        month = _month_number(groups["mon"])
    elif groups.get("m"):
        month = int(groups["m"])
    else:
        month = 1
    day = int(groups["d"]) if groups.get("d") else 15
    if not groups.get("mon") and not groups.get("m") and not groups.get("d"):
        # a year alone moves to the next or previous year, never stays (it may tell an age)
        month, day = (12, 31) if days > 0 else (1, 1)
    if groups.get("y"):
        year = int(groups["y"])
        if len(groups["y"]) == 2:
            year += 2000 if year <= 50 else 1900
    else:
        year = 2000 if (month, day) == (2, 29) else 2001  # no year written: a fixed one
    try:
        return dt.date(year, month, day) + dt.timedelta(days=days)
    except ValueError:
        return None


def _month_number(name: str) -> int:
    key = name.rstrip(".")[:3].lower()
    return [month[:3].lower() for month in _MONTHS].index(key) + 1


def _rewrite(match: re.Match[str], moved: dt.date) -> str:
    text = match.string
    pieces: list[tuple[int, int, str]] = []
    for group in ("y", "m", "mon", "d", "sfx"):
        if group not in match.re.groupindex or match.group(group) is None:
            continue
        old = match.group(group)
        start, end = match.span(group)
        if group == "y":
            new = str(moved.year) if len(old) == 4 else f"{moved.year % 100:02d}"
        elif group == "m":
            new = f"{moved.month:02d}" if _padded(match, old) else str(moved.month)
        elif group == "d":
            new = f"{moved.day:02d}" if _padded(match, old) else str(moved.day)
        elif group == "mon":
            word = old.rstrip(".")
            full = _MONTHS[moved.month - 1]
            spelled_out = word.lower() == _MONTHS[_month_number(word) - 1].lower()
            new = full if spelled_out else full[:3]
            new = new.upper() if word.isupper() and len(word) > 1 else new
            new = new.lower() if word.islower() else new
            end = start + len(word)  # keep an abbreviation's dot
        else:
            new = _suffix(moved.day)
            new = new.upper() if old.isupper() else new
        pieces.append((start, end, new))
    out = text
    for start, end, new in sorted(pieces, reverse=True):
        out = out[:start] + new + out[end:]
    return out


def _padded(match: re.Match[str], old: str) -> bool:
    """Whether a day or month is written with two digits: "03" is; "12" is in an all-number
    date ("12/13/2024" -> "01/05/2025") but not beside a month name ("12 May" -> "8 August")."""
    if old.startswith("0"):
        return True
    groups = match.groupdict()
    return len(old) == 2 and not groups.get("mon") and not groups.get("sfx")


def _suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
