"""Whitespace folded for matching: every line break, tab or run of spaces becomes one space,
with the map back to the note's own character offsets.

spaCy keeps a line break or a second space as a token of its own, so "cannot\\n  exclude" in
a wrapped report would not match the phrase "cannot exclude" (and its "not" would negate);
the matchers therefore run on the folded text, and every offset they find is mapped back.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

#: whitespace that is not exactly one plain space
_RUN = re.compile(r"\s{2,}|[^\S ]")


@dataclass(frozen=True)
class FoldedText:
    """A text with its whitespace folded, and where its pieces lie in the original."""

    text: str
    #: where each piece starts in the folded text and in the original (the same length each,
    #: up to the folded space that ends it)
    folded_starts: tuple[int, ...] = (0,)
    original_starts: tuple[int, ...] = (0,)

    def original(self, offset: int) -> int:
        """The original offset of a folded one."""
        k = bisect_right(self.folded_starts, offset) - 1
        return self.original_starts[k] + offset - self.folded_starts[k]

    def folded(self, offset: int) -> int:
        """The folded offset of an original one (inside folded whitespace: the next word)."""
        k = bisect_right(self.original_starts, offset) - 1
        position = self.folded_starts[k] + offset - self.original_starts[k]
        if k + 1 < len(self.folded_starts):
            position = min(position, self.folded_starts[k + 1])
        return position


def fold_space(text: str) -> FoldedText:
    """``text`` with each run of whitespace other than a single space folded to one space."""
    pieces: list[str] = []
    folded_starts, original_starts = [0], [0]
    last = length = 0
    for run in _RUN.finditer(text):
        pieces.append(text[last : run.start()])
        pieces.append(" ")
        length += run.start() - last + 1
        last = run.end()
        folded_starts.append(length)
        original_starts.append(last)
    if len(folded_starts) == 1:
        return FoldedText(text)
    pieces.append(text[last:])
    return FoldedText("".join(pieces), tuple(folded_starts), tuple(original_starts))
