"""`PhiSpan`: one stretch of a note that de-identification masks, and the PHI types.

Offsets are character offsets into the INPUT text (``text[start:end]`` is the original),
so spans can be stored and scored without the original strings.
"""

from __future__ import annotations

from dataclasses import dataclass

#: every PHI type a span may carry, in the order a tie between overlapping spans of equal
#: width is decided (earlier wins): fixed shapes first, and NAME last, since a name found
#: with evidence is usually wider than a place ("from Lincoln" is a place, "Abe Lincoln" not)
PHI_TYPES = (
    "EMAIL",
    "URL",
    "PHONE",
    "FAX",
    "DATE",
    "ID",
    "AGE",
    "HOSPITAL",
    "ADDRESS",
    "LOCATION",
    "NAME",
)

PRIORITY = {phi_type: rank for rank, phi_type in enumerate(PHI_TYPES)}


@dataclass(frozen=True)
class PhiSpan:
    """A masked stretch of text.

    Attributes:
        start: first character, in the input text.
        end: one past the last character, in the input text.
        type: one of `PHI_TYPES`.
        replacement: what the output holds instead (a surrogate or a ``[TYPE]`` tag); empty
            until de-identification fills it.
    """

    start: int
    end: int
    type: str
    replacement: str = ""

    def as_record(self) -> dict[str, int | str]:
        """The span as ``spans.jsonl`` stores it: offsets and type, never a string of the note."""
        return {"start": self.start, "end": self.end, "type": self.type}
