"""What the pipeline finds in a note: sections, sentences and entities with their context.

Offsets are character offsets into the note's text (``text[start:end]``). These records are
what `text analyze` writes, what the labeller reads and what `TextResult` carries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ENTITY_TYPES = ("finding", "anatomy", "medication", "procedure", "device", "measurement")
NEGATION = ("affirmed", "negated")
CERTAINTY = ("certain", "uncertain")
TEMPORALITY = ("recent", "historical", "hypothetical")
EXPERIENCER = ("patient", "other")


@dataclass(frozen=True)
class Section:
    """A section: its canonical name (``findings``), the header's span and the body's end."""

    name: str
    start: int
    end: int
    #: where the body starts (after the header line)
    body_start: int


@dataclass
class Entity:
    """One entity and its assertion context."""

    start: int
    end: int
    type: str
    text: str
    #: the normalised concept: radlabels finding names for findings and devices
    #: (``pleural_effusion``, ``lung_nodule_or_mass``, ``endotracheal_tube``), else lower text
    concept: str
    section: str | None = None
    sentence: int = 0
    negation: str = "affirmed"
    certainty: str = "certain"
    temporality: str = "recent"
    experiencer: str = "patient"
    #: a measurement's size in millimetres (and, on a finding, the size measured for it)
    value_mm: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class AnalyzedNote:
    """A note after the pipeline: its sections, sentence spans and entities."""

    note_id: str
    sections: list[Section] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    #: document labels a trained classifier gave it (output -> label)
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of `text analyze`'s JSONL)."""
        return {
            "note_id": self.note_id,
            "sections": [asdict(s) for s in self.sections],
            "sentences": [list(s) for s in self.sentences],
            "entities": [e.to_json() for e in self.entities],
            "labels": dict(self.labels),
        }
