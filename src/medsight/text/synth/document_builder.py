"""`DocumentBuilder`: writes a note piece by piece and records the gold spans as it goes.

Every generator appends text through it, so an entity's or a PHI span's offsets are the
length of the text written before it: they are exact by construction, whatever typos or
layout the filler text around them gets. It also records sentence spans (for ``assert.csv``)
and sections (canonical name, span).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from medsight.text.synth.typos import add_typos


@dataclass
class GoldEntity:
    """One planted entity mention with its gold assertion context."""

    start: int
    end: int
    type: str
    concept: str
    negation: str = "affirmed"
    certainty: str = "certain"
    temporality: str = "recent"
    experiencer: str = "patient"
    value_mm: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSONL form (the design's ``entities`` record)."""
        return {
            "start": self.start,
            "end": self.end,
            "type": self.type,
            "concept": self.concept,
            "negation": self.negation,
            "certainty": self.certainty,
            "temporality": self.temporality,
            "experiencer": self.experiencer,
            "value_mm": self.value_mm,
        }


@dataclass(frozen=True)
class Mention:
    """A piece of a sentence that is an entity: its text, type, concept and gold context."""

    text: str
    type: str
    concept: str
    negation: str = "affirmed"
    certainty: str = "certain"
    temporality: str = "recent"
    experiencer: str = "patient"
    value_mm: float | None = None


@dataclass(frozen=True)
class Phi:
    """A piece of text that is PHI of ``type`` (NAME, DATE, AGE, ID, ...)."""

    text: str
    type: str


@dataclass(frozen=True)
class Verbatim:
    """Filler text written without typos: words the gold record repeats (a nodule's
    character, which the ``nodule`` record names and a reader looks for around the nodule)."""

    text: str


#: what a sentence is made of: filler text, entity mentions, PHI strings and verbatim words
Piece = str | Mention | Phi | Verbatim


@dataclass(frozen=True)
class GeneratedNote:
    """A generated note: its JSONL record and its sentence spans (for ``assert.csv``)."""

    record: dict[str, Any]
    sentences: list[tuple[int, int]]


@dataclass
class DocumentBuilder:
    """Accumulates a note's text with its entities, PHI spans and sentences.

    Args:
        rng: the document's random source (typos in filler text).
        typo_rate: chance that a filler word of four or more letters gets one typo.
    """

    rng: random.Random
    typo_rate: float = 0.0
    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[GoldEntity] = field(default_factory=list)
    phi: list[dict[str, Any]] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    _sentence_start: int | None = None

    def text(self, piece: str, typos: bool = True) -> DocumentBuilder:
        """Append filler text (typos at ``typo_rate`` unless ``typos`` is False)."""
        if typos and self.typo_rate > 0:
            piece = add_typos(piece, self.rng, self.typo_rate)
        self.parts.append(piece)
        self.length += len(piece)
        return self

    def entity(
        self,
        piece: str,
        type_: str,
        concept: str,
        **context: Any,
    ) -> GoldEntity:
        """Append an entity mention verbatim and record it (``context``: assertion, value_mm)."""
        start = self.length
        self.text(piece, typos=False)
        found = GoldEntity(start, self.length, type_, concept, **context)
        self.entities.append(found)
        return found

    def phi_span(self, piece: str, type_: str) -> None:
        """Append a PHI string verbatim and record its span and type."""
        start = self.length
        self.text(piece, typos=False)
        self.phi.append({"start": start, "end": self.length, "type": type_})

    def write(self, *pieces: Piece) -> None:
        """Append pieces: filler strings, `Mention` entities, `Phi` strings and `Verbatim` text."""
        for piece in pieces:
            if isinstance(piece, Mention):
                self.entity(
                    piece.text,
                    piece.type,
                    piece.concept,
                    negation=piece.negation,
                    certainty=piece.certainty,
                    temporality=piece.temporality,
                    experiencer=piece.experiencer,
                    value_mm=piece.value_mm,
                )
            elif isinstance(piece, Phi):
                self.phi_span(piece.text, piece.type)
            elif isinstance(piece, Verbatim):
                self.text(piece.text, typos=False)
            else:
                self.text(piece)

    def sentence(self, *pieces: Piece) -> None:
        """Append one sentence made of ``pieces`` and record its span."""
        self.begin_sentence()
        self.write(*pieces)
        self.end_sentence()

    def begin_sentence(self) -> None:
        """Mark where the next sentence starts."""
        self._sentence_start = self.length

    def end_sentence(self) -> None:
        """Close the sentence begun last (empty ones are dropped)."""
        if self._sentence_start is not None and self.length > self._sentence_start:
            self.sentences.append((self._sentence_start, self.length))
        self._sentence_start = None

    def build(self) -> str:
        """The whole text."""
        return "".join(self.parts)
