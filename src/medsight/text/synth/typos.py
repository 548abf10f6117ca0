"""Typing errors in filler text: a dropped, doubled or swapped letter, as dictation and
typing leave them. Entity and PHI strings are written verbatim (their gold spans must match
the text), so only the words between them get typos.
"""

from __future__ import annotations

import random
import re

_WORD = re.compile(r"[A-Za-z]{4,}")


def add_typos(text: str, rng: random.Random, rate: float) -> str:
    """Return ``text`` with each word of four or more letters mistyped with chance ``rate``.

    One edit per chosen word, never its first letter (so capitalisation and headers that
    start a line stay recognisable): drop a letter, double one, or swap two neighbours.
    """

    def edit(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() >= rate:
            return word
        i = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            return word[:i] + word[i + 1 :]
        if kind == 1:
            return word[: i + 1] + word[i] + word[i + 1 :]
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    return _WORD.sub(edit, text)
