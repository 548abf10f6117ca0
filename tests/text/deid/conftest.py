"""Shared fixtures of the de-identification tests: the hand-written held-out notes with their
PHI marked ``[[TYPE|text]]`` (heldout_notes.txt), parsed into text and gold spans."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

HELDOUT = Path(__file__).with_name("heldout_notes.txt")
KEY = "test-key-0123456789abcdef"
_MARK = re.compile(r"\[\[([A-Z]+)\|(.+?)\]\]")


@dataclass(frozen=True)
class GoldNote:
    """A note with its gold PHI spans (``start, end, type`` in ``text``)."""

    patient: str
    text: str
    spans: list[tuple[int, int, str]]

    def strings(self) -> list[str]:
        return [self.text[s:e] for s, e, _ in self.spans]


def parse_marked(marked: str, patient: str = "") -> GoldNote:
    """Text with ``[[TYPE|text]]`` marks -> the plain text and the marked spans."""
    text, spans, cursor = [], [], 0
    length = 0
    for match in _MARK.finditer(marked):
        before = marked[cursor : match.start()]
        text.append(before)
        length += len(before)
        spans.append((length, length + len(match.group(2)), match.group(1)))
        text.append(match.group(2))
        length += len(match.group(2))
        cursor = match.end()
    text.append(marked[cursor:])
    return GoldNote(patient, "".join(text), spans)


def heldout_notes() -> list[GoldNote]:
    """The held-out notes of heldout_notes.txt."""
    body = "\n".join(
        line
        for line in HELDOUT.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    )
    notes = []
    for chunk in body.split("\n=====\n"):
        first, _, rest = chunk.strip("\n").partition("\n")
        notes.append(parse_marked(rest, first.removeprefix("patient:").strip()))
    return notes


@pytest.fixture(scope="session")
def heldout() -> list[GoldNote]:
    return heldout_notes()
