"""Tokens with character offsets for the tagger, and spans <-> BIO tags over them.

A regular expression, not spaCy's tokenizer: a tag sequence must map back to exact character
offsets, and the finest split that still keeps words whole (a run of letters, a run of
digits, or any other single non-space character) puts a token boundary at nearly every place
an annotator ends a span ("8mm" -> "8", "mm"; "03/14/2101" -> "03", "/", "14", ...), which
spaCy's English rules do not (they keep "8mm" and e-mail addresses whole). ``text[start:end]``
of every token is its text, so offsets round-trip by construction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: a run of letters, a run of digits, or any other single non-space character
TOKEN_PATTERN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")
OUTSIDE = "O"


@dataclass(frozen=True)
class Token:
    """One token: ``text[start:end]``."""

    start: int
    end: int
    text: str


def tokenize(text: str) -> list[Token]:
    """The note's tokens in order (whitespace is never part of a token)."""
    return [Token(m.start(), m.end(), m.group()) for m in TOKEN_PATTERN.finditer(text)]


def tag_names(types: Sequence[str]) -> list[str]:
    """``O`` then ``B-T``, ``I-T`` for each type, in the order given."""
    names = [OUTSIDE]
    for kind in types:
        names += [f"B-{kind}", f"I-{kind}"]
    return names


def spans_to_tags(tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]]) -> list[str]:
    """BIO tags of ``tokens`` for non-overlapping character ``spans`` ``(start, end, type)``.

    A token belongs to a span when it overlaps it; a span that starts or ends inside a token
    therefore takes the whole token (count those with `misaligned_spans`).
    """
    tags = [OUTSIDE] * len(tokens)
    starts = [t.start for t in tokens]
    for start, end, kind in sorted(spans):
        first = True
        index = _first_token_ending_after(starts, tokens, start)
        while index < len(tokens) and tokens[index].start < end:
            if tags[index] == OUTSIDE:
                tags[index] = f"{'B' if first else 'I'}-{kind}"
                first = False
            index += 1
    return tags


def _first_token_ending_after(starts: list[int], tokens: Sequence[Token], offset: int) -> int:
    import bisect

    index = max(bisect.bisect_right(starts, offset) - 1, 0)
    while index < len(tokens) and tokens[index].end <= offset:
        index += 1
    return index


def tags_to_spans(tokens: Sequence[Token], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, type)`` of a BIO sequence (a stray ``I-T`` opens a span)."""
    spans: list[tuple[int, int, str]] = []
    current: list[int | str] | None = None
    for token, tag in zip(tokens, tags, strict=True):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == kind:
            current[1] = token.end
            continue
        if current is not None:
            spans.append((int(current[0]), int(current[1]), str(current[2])))
            current = None
        if prefix in ("B", "I"):
            current = [token.start, token.end, kind]
    if current is not None:
        spans.append((int(current[0]), int(current[1]), str(current[2])))
    return spans


def misaligned_spans(tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]]) -> int:
    """How many spans start or end inside a token (the tagger can only widen them)."""
    starts = {t.start for t in tokens}
    ends = {t.end for t in tokens}
    return sum(1 for start, end, _ in spans if start not in starts or end not in ends)
