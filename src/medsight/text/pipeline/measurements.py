"""Sizes written in the text (``8 mm``, ``1.2 cm``, ``8 x 6 mm``) and the finding each sizes.

Sizes are in millimetres (cm times 10); a size with several dimensions is its largest one,
the convention of nodule reporting (Fleischner: "14 x 11 mm" is a 14 mm nodule).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

from medsight.text.pipeline.annotations import Entity

_NUMBER = r"\d+(?:\.\d+)?"
MEASUREMENT = re.compile(
    rf"(?<![\w.])(?P<a>{_NUMBER})(?:\s*(?:x|\u00d7|by)\s*(?P<b>{_NUMBER}))?"
    rf"(?:\s*(?:x|\u00d7|by)\s*(?P<c>{_NUMBER}))?\s*-?\s*"
    r"(?P<unit>mm|cm|millimeters?|millimetres?|centimeters?|centimetres?)(?![A-Za-z])",
    re.IGNORECASE,
)


def find_measurements(text: str) -> list[Entity]:
    """Every size in ``text`` as a ``measurement`` entity (concept ``size``) with value_mm."""
    found = []
    for match in MEASUREMENT.finditer(text):
        values = [float(v) for v in match.group("a", "b", "c") if v is not None]
        scale = 10.0 if match.group("unit").lower().startswith("c") else 1.0
        value = round(max(values) * scale, 2)
        found.append(
            Entity(
                start=match.start(),
                end=match.end(),
                type="measurement",
                text=match.group(0),
                concept="size",
                value_mm=value,
            )
        )
    return found


def attach_sizes(entities: Sequence[Entity], sentence_starts: Sequence[int]) -> None:
    """Give each finding the size written nearest to it in its sentence.

    A measurement sizes the nearest finding (by characters between them) in the same
    sentence; a historical measurement ("previously 8 mm") sizes nothing, and a finding that
    two sizes are nearest to keeps the nearer. Devices are not sized ("the ET tube is 4 cm
    above the carina" is a position, not a size).
    """
    findings = [e for e in entities if e.type == "finding"]
    if not findings:
        return
    best: dict[int, tuple[int, float]] = {}
    for m in entities:
        if m.type != "measurement" or m.temporality == "historical" or m.value_mm is None:
            continue
        sentence = bisect_right(sentence_starts, m.start) - 1
        nearest: tuple[int, int] | None = None
        for i, f in enumerate(findings):
            if bisect_right(sentence_starts, f.start) - 1 != sentence:
                continue
            gap = f.start - m.end if f.start >= m.end else m.start - f.end
            if nearest is None or gap < nearest[0]:
                nearest = (gap, i)
        if nearest is not None:
            gap, i = nearest
            if i not in best or gap < best[i][0]:
                best[i] = (gap, m.value_mm)
    for i, (_, value) in best.items():
        findings[i].value_mm = value
