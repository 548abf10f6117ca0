"""The tagger's input vocabularies (words, word shapes, characters), built on training notes.

Words are lower-cased with digits folded to ``0``; a number has no word entry at all (its
shape and characters say what it is: a word entry would key on its digit count, and a tagger
that learned "8-digit MRN" missed every 7-digit one); a word seen fewer than ``min_count``
times maps to ``<unk>``, whose embedding training learns through word dropout, so an unseen
name falls back on its shape ("Xx") and its characters. Saved as ``vocabulary.json`` in the
run: plain JSON, never pickle.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medsight.errors import InputError

PAD, UNK = "<pad>", "<unk>"
_DIGIT = re.compile(r"\d")


def word_key(token: str) -> str:
    """The vocabulary key of a token: lower case, every digit ``0``."""
    return _DIGIT.sub("0", token.lower())


def word_shape(token: str) -> str:
    """The token's shape: ``X`` upper, ``x`` lower, ``d`` digit, repeats folded ("John" -> "Xx")."""
    out: list[str] = []
    for char in token:
        code = "X" if char.isupper() else "x" if char.islower() else "d" if char.isdigit() else char
        if not out or out[-1] != code:
            out.append(code)
    return "".join(out[:6])


@dataclass
class Vocabulary:
    """Index tables of words, shapes and characters (0 = padding, 1 = unknown in each)."""

    words: list[str] = field(default_factory=lambda: [PAD, UNK])
    shapes: list[str] = field(default_factory=lambda: [PAD, UNK])
    chars: list[str] = field(default_factory=lambda: [PAD, UNK])

    def __post_init__(self) -> None:
        self._word = {w: i for i, w in enumerate(self.words)}
        self._shape = {s: i for i, s in enumerate(self.shapes)}
        self._char = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def build(
        cls, tokens: Iterable[str], min_count: int = 2, exclude: Iterable[str] = ()
    ) -> Vocabulary:
        """Words seen ``min_count`` times, every shape and character of ``tokens``.

        Args:
            tokens: the training notes' tokens.
            min_count: a word needs this many occurrences to get its own embedding.
            exclude: tokens never given a word entry (PHI inside gold spans, so the saved
                vocabulary holds no patient's name or number; they are read by shape and
                characters alone).
        """
        banned = {word_key(t) for t in exclude}
        words: Counter[str] = Counter()
        shapes: Counter[str] = Counter()
        chars: Counter[str] = Counter()
        for token in tokens:
            words[word_key(token)] += 1
            shapes[word_shape(token)] += 1
            chars.update(token)
        return cls(
            words=[
                PAD,
                UNK,
                *sorted(
                    w
                    for w, c in words.items()
                    if c >= min_count and w not in banned and not w.isdigit()
                ),
            ],
            shapes=[PAD, UNK, *sorted(shapes)],
            chars=[PAD, UNK, *sorted(chars)],
        )

    def word(self, token: str) -> int:
        """Index of a token's word (1 when unknown)."""
        return self._word.get(word_key(token), 1)

    def shape(self, token: str) -> int:
        """Index of a token's shape (1 when unknown)."""
        return self._shape.get(word_shape(token), 1)

    def char_ids(self, token: str, width: int) -> list[int]:
        """Indices of the token's first ``width`` characters (unknown 1), padded with 0."""
        ids = [self._char.get(c, 1) for c in token[:width]]
        return ids + [0] * (width - len(ids))

    def save(self, path: Path) -> Path:
        """Write the tables as JSON."""
        data = {"words": self.words, "shapes": self.shapes, "chars": self.chars}
        path.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read the tables written by `save`.

        Raises:
            InputError: missing or malformed.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                words=list(data["words"]), shapes=list(data["shapes"]), chars=list(data["chars"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}: unreadable tagger vocabulary ({exc.__class__.__name__})"
            ) from None
