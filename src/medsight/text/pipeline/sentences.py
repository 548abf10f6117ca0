"""Sentence splitting by rules on the raw text: fast, and aware of clinical layout.

A sentence ends at ``.``, ``!`` or ``?`` followed by space and a capital, digit, bracket or
``___``, or at a full stop after a word of three letters or more followed by a lower-case word
(unless the word before the full stop is a known abbreviation or an initial), at a
blank line, before a numbered or bulleted list item, at a section header (which is a sentence
of its own) and at a line break where the next line starts with a capital and the previous
line is short (a list or a table, not a wrapped paragraph).

Hand-written rather than PyRuSH or spaCy's senter: PyRuSH comes with medspaCy (which pins
spaCy < 3.8), a statistical senter needs trained weights, and these regular expressions over
the text cost a fraction of tokenising it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: words whose trailing full stop does not end a sentence (compared lower-cased, no dot)
# units (mm, cm, mg) are not here: "measures 8 mm." ends a sentence
ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "vs",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "approx",
        "no",
        "nos",
        "st",
        "jr",
        "sr",
        "etc",
        "fig",
        "pt",
        "pts",
        "dx",
        "hx",
        "tx",
        "rx",
        "sx",
        "b.i.d",
        "t.i.d",
        "q.i.d",
        "q",
        "qd",
        "bid",
        "tid",
        "qid",
        "qhs",
        "po",
        "iv",
        "im",
        "sq",
        "subq",
        "cf",
        "inc",
        "ltd",
        "co",
        "dept",
        "ref",
    ]
)
_END = re.compile(r"[.!?]+(?=[)\]\"']?\s+(?:[A-Z0-9(\[\"']|_{2,}))")
#: a full stop after a word of three or more letters and before a lower-case word also ends
#: a sentence (typed wet reads: "no pneumothorax. heart size normal.")
_END_LOWER = re.compile(r"(?<=[A-Za-z]{3})\.(?=\s+[a-z])")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_BLANK = re.compile(r"\n[ \t]*\n")
_LIST_ITEM = re.compile(r"^[ \t]*(?:\d{1,2}[.)]|[-*\u2022])[ \t]+", re.MULTILINE)
_LINE = re.compile(r"\n(?=[ \t]*[A-Z])")
#: a line no longer than this that is followed by a capitalised line ends a sentence
SHORT_LINE = 50


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    line = text[text.rfind("\n", 0, dot) + 1 : dot].strip()
    if line.isdigit() and len(line) <= 2:  # the "1." of a numbered list
        return True
    match = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    if match is None:
        return False
    word = match.group(1).lower().rstrip(".")
    if word in ("a.m", "p.m"):
        return False
    return word in ABBREVIATIONS or (len(word) == 1 and match.group(1).isupper())


def split_sentences(text: str, breaks: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``, stripped of surrounding whitespace.

    Args:
        text: the note.
        breaks: extra offsets where a sentence must end (section headers' starts and ends).

    Returns:
        Non-empty, non-overlapping spans in order.
    """
    cuts = set(breaks)
    for match in _END.finditer(text):
        if not _is_abbreviation(text, match.start()):
            cuts.add(match.end())
    for match in _END_LOWER.finditer(text):
        if not _is_abbreviation(text, match.start()):
            cuts.add(match.end())
    for match in _BLANK.finditer(text):
        cuts.add(match.start())
    for match in _LIST_ITEM.finditer(text):
        cuts.add(match.start())
    for match in _LINE.finditer(text):
        previous = text.rfind("\n", 0, match.start()) + 1
        if match.start() - previous <= SHORT_LINE:
            cuts.add(match.start())
    cuts.add(len(text))
    spans = []
    start = 0
    for cut in sorted(cuts):
        if cut <= start:
            continue
        piece = text[start:cut]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        start = cut
    return spans
