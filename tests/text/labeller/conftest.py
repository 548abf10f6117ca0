"""Hand-made analysed reports: entities placed on a short text with the context a pipeline
would give them, so the labeller's rules are tested without the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from medsight.text.pipeline.annotations import AnalyzedNote, Entity, Section


def make_analysed(
    text: str, mentions: list[tuple[str, str, dict[str, Any]]], note_id: str = "r1"
) -> AnalyzedNote:
    """An `AnalyzedNote` of ``text``: sections from ``HEADER:`` lines, sentences split at
    ". " and one entity per ``(phrase, concept, context)`` at the phrase's first occurrence
    (``context`` sets negation/certainty/temporality/experiencer/type)."""
    sections: list[Section] = []
    headers = {"INDICATION": "history", "FINDINGS": "findings", "IMPRESSION": "impression"}
    for header, name in headers.items():
        at = text.find(header + ":")
        if at >= 0:
            sections.append(Section(name, at, len(text), at + len(header) + 1))
    sections.sort(key=lambda s: s.start)
    sections = [
        Section(
            s.name,
            s.start,
            sections[i + 1].start if i + 1 < len(sections) else len(text),
            s.body_start,
        )
        for i, s in enumerate(sections)
    ]
    sentences, start = [], 0
    for i, ch in enumerate(text):
        if ch in ".\n" and i + 1 - start > 1:
            sentences.append((start, i + 1))
            start = i + 1
    entities = []
    for phrase, concept, context in mentions:
        at = text.index(phrase)
        section = next((s.name for s in sections if s.start <= at < s.end), None)
        entities.append(
            Entity(
                start=at,
                end=at + len(phrase),
                type=context.pop("type", "finding"),
                text=phrase,
                concept=concept,
                section=section,
                **context,
            )
        )
    return AnalyzedNote(note_id=note_id, sections=sections, sentences=sentences, entities=entities)


@pytest.fixture
def analysed() -> Callable[..., AnalyzedNote]:
    """`make_analysed`, for tests."""
    return make_analysed
