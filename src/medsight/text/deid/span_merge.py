"""Overlapping PHI spans become one: the union of their characters, typed by the widest.

Recall first: two detectors that disagree on where a span ends both get their characters
masked. A tie in width is decided by `PRIORITY` (a name before a location).
"""

from __future__ import annotations

from collections.abc import Iterable

from medsight.text.deid.phi_span import PRIORITY, PhiSpan


def merge_spans(spans: Iterable[tuple[int, int, str]]) -> list[PhiSpan]:
    """Sorted, non-overlapping spans covering every character of ``spans``.

    Args:
        spans: ``(start, end, type)``; empty spans are dropped.

    Returns:
        One `PhiSpan` per group of overlapping input spans, ordered by start.
    """
    ordered = sorted((s for s in spans if s[1] > s[0]), key=lambda s: (s[0], -s[1]))
    merged: list[PhiSpan] = []
    group: list[tuple[int, int, str]] = []
    end = -1
    for span in ordered:
        if group and span[0] >= end:
            merged.append(_one(group))
            group = []
        group.append(span)
        end = max(end, span[1]) if len(group) > 1 else span[1]
    if group:
        merged.append(_one(group))
    return merged


def _one(group: list[tuple[int, int, str]]) -> PhiSpan:
    widest = min(group, key=lambda s: (-(s[1] - s[0]), PRIORITY.get(s[2], len(PRIORITY))))
    return PhiSpan(min(s[0] for s in group), max(s[1] for s in group), widest[2])
