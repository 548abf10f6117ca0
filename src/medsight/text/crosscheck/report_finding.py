"""What a chest-CT report says about the nodule: present / absent / uncertain / not mentioned,
its size and its character, read from the analysed report.

The label is the report labeller's (`label_report` for ``lung_nodule_or_mass``: indication and
history do not count, the impression decides, negation beats uncertainty), so the crosscheck
and the labeller never disagree about what a report says. The size is the largest ``value_mm``
the pipeline attached to a deciding mention (the current size: "previously 11 mm" is a
measurement of its own, not the nodule's), else to any recent affirmed mention. The character
is the first of these words found in the deciding mentions' sentences: calcified,
spiculated, part-solid (or ground-glass), lobulated, smooth (or well-circumscribed):
calcification first, since a calcified nodule is
benign whatever its outline (Lung-RADS category 1).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from medsight.text.labeller.report_labels import deciding_mentions, label_report
from medsight.text.pipeline.annotations import AnalyzedNote

NODULE = "lung_nodule_or_mass"
_CHARACTERS = (
    ("calcified", re.compile(r"\bcalcifi", re.IGNORECASE)),
    ("spiculated", re.compile(r"\bspicul", re.IGNORECASE)),
    ("part-solid", re.compile(r"\bpart(ly|ially)?[- ]solid|\bground[- ]glass", re.IGNORECASE)),
    ("lobulated", re.compile(r"\blobulat", re.IGNORECASE)),
    ("smooth", re.compile(r"\bsmooth|\bwell[- ]circumscribed", re.IGNORECASE)),
)


@dataclass(frozen=True)
class ReportFinding:
    """The nodule as one report describes it."""

    note_id: str
    case_id: str
    #: present | absent | uncertain | not mentioned
    nodule: str
    size_mm: float | None = None
    character: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def nodule_finding(text: str, analyzed: AnalyzedNote, case_id: str) -> ReportFinding:
    """Read the nodule finding of one analysed report.

    Args:
        text: the report's text (the character words are looked up in it).
        analyzed: the report after the rule pipeline.
        case_id: the imaging case the report belongs to.
    """
    label = label_report(analyzed, [NODULE])[NODULE]
    mentions = [e for e, said in deciding_mentions(analyzed, NODULE) if said == label]
    sizes = [e.value_mm for e in mentions if e.value_mm is not None]
    if not sizes:  # an impression without a size: the body's current, affirmed mentions
        sizes = [
            e.value_mm
            for e in analyzed.entities
            if e.concept == NODULE
            and e.value_mm is not None
            and e.negation == "affirmed"
            and e.temporality == "recent"
            and e.experiencer == "patient"
        ]
    character = None
    if label in ("present", "uncertain"):
        sentences = [
            text[slice(*analyzed.sentences[e.sentence])]
            for e in mentions
            if 0 <= e.sentence < len(analyzed.sentences)
        ]
        character = next(
            (name for name, pattern in _CHARACTERS if any(pattern.search(s) for s in sentences)),
            None,
        )
    return ReportFinding(
        analyzed.note_id,
        case_id,
        label,
        max(sizes) if sizes and label in ("present", "uncertain") else None,
        character,
    )
