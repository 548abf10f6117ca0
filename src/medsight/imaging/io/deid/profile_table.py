"""PS3.15 Table E.1-1 as data: load ``basic_profile.csv`` and look up the row for a tag.

The table's compound action codes are resolved once, here, by one rule:

* ``X/Z`` -> ``Z``, ``X/D`` -> ``D``, ``Z/D`` -> ``D``, ``X/Z/D`` -> ``D``;
* ``X/Z/U*`` -> ``U`` (the sequence is kept and the UIDs inside it are replaced; everything
  else inside it is de-identified by the same table).

Why: none of X (remove), Z (empty) and D (dummy) keeps anything of the original value, so
they are equally private; the table offers Z or D only because the attribute is Type 2 or
Type 1 in some IOD. Without per-IOD module tables, the choice that is valid in *every* IOD
that uses the attribute is the most conservative valid one: D where the table allows it,
else Z. For ``X/Z/U*`` (Referenced Image Sequence, Source Image Sequence) U keeps the
references between de-identified instances valid, which is the point of replacing UIDs
with keyed hashes rather than removing them.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydicom.tag import BaseTag

Action = Literal["X", "Z", "D", "U", "K", "C"]

PROFILE_EDITION = "DICOM PS3.15 2026c"
_CSV_NAME = "basic_profile.csv"
_PRIVATE_PATTERN = "(gggg,eeee)"
_RESOLVED: dict[str, Action] = {
    "X": "X",
    "Z": "Z",
    "D": "D",
    "U": "U",
    "K": "K",
    "C": "C",
    "X/Z": "Z",
    "X/D": "D",
    "Z/D": "D",
    "X/Z/D": "D",
    "X/Z/U*": "U",
}


def resolve_action(code: str) -> Action:
    """The single action medsight applies for a table action code (rule in module docstring).

    Raises:
        ValueError: ``code`` is not an action code of Table E.1-1 (a corrupt table file).
    """
    try:
        return _RESOLVED[code.strip()]
    except KeyError:
        raise ValueError(f"unknown PS3.15 action code {code!r}") from None


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1 (the columns medsight uses)."""

    tag: str
    keyword: str
    name: str
    basic_profile: str
    rtn_pat_chars_opt: str
    rtn_long_full_dates_opt: str
    rtn_long_modif_dates_opt: str

    @property
    def basic_action(self) -> Action:
        """The Basic Profile action after resolving compound codes."""
        return resolve_action(self.basic_profile)

    @property
    def is_longitudinal(self) -> bool:
        """Whether the Retain Longitudinal Temporal Information options cover this row."""
        return bool(self.rtn_long_full_dates_opt or self.rtn_long_modif_dates_opt)


def _pattern(tag: str) -> tuple[int, int]:
    """(mask, value) for a ``(gggg,eeee)`` pattern whose ``x`` digits match anything."""
    digits = tag.strip("()").replace(",", "").lower()
    if len(digits) != 8:
        raise ValueError(f"malformed tag {tag!r} in {_CSV_NAME}")
    mask = int("".join("0" if d == "x" else "f" for d in digits), 16)
    value = int(digits.replace("x", "0"), 16)
    return mask, value


class ProfileTable:
    """Rows of Table E.1-1 indexed by tag, with group wildcards and the private-tags row."""

    def __init__(self, rows: list[ProfileRow]) -> None:
        self.rows = rows
        self._exact: dict[int, ProfileRow] = {}
        self._wildcards: list[tuple[int, int, ProfileRow]] = []
        self.private_row: ProfileRow | None = None
        for row in rows:
            if row.tag == _PRIVATE_PATTERN:
                self.private_row = row
                continue
            mask, value = _pattern(row.tag)
            if mask == 0xFFFFFFFF:
                self._exact[value] = row
            else:
                self._wildcards.append((mask, value, row))

    def lookup(self, tag: BaseTag) -> ProfileRow | None:
        """The row governing public ``tag``, or None if the table does not list it.

        Private tags are not looked up here: see `private_row`.
        """
        row = self._exact.get(int(tag))
        if row is not None:
            return row
        for mask, value, wildcard in self._wildcards:
            if int(tag) & mask == value:
                return wildcard
        return None


def parse_profile_csv(text: str) -> ProfileTable:
    """Parse the table from CSV text (``#`` lines are comments).

    Raises:
        ValueError: a row is malformed or carries an unknown action code.
    """
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = []
    for number, record in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), start=1):
        if None in record or None in record.values():
            raise ValueError(f"{_CSV_NAME}: row {number} has the wrong number of columns")
        row = ProfileRow(**record)
        resolve_action(row.basic_profile)
        if row.tag != _PRIVATE_PATTERN:
            _pattern(row.tag)
        rows.append(row)
    return ProfileTable(rows)


@functools.cache
def basic_profile() -> ProfileTable:
    """The packaged Basic Application Level Confidentiality Profile table (loaded once)."""
    text = (
        resources.files("medsight.imaging.io.deid").joinpath(_CSV_NAME).read_text(encoding="utf-8")
    )
    return parse_profile_csv(text)
