"""ConText: negation, certainty, temporality and experiencer of each entity, by trigger rules.

The algorithm of Harkema et al. (2009, "ConText: an algorithm for determining negation,
experiencer, and temporal status from clinical reports"): a trigger phrase modifies the
entities in its scope, which runs forward (``no`` ..., ``history of`` ...), backward
(... ``is ruled out``, ... ``cannot be excluded``) or both ways (``versus``, family members)
to the end of the sentence or to a terminator (``but``, ``however``, ``which``, ``;``; some
end only one category's scopes: ``due to`` ends a negation). Pseudo-triggers ("no change",
"prior study") are removed at matching time (see `targets`).

Decisions, for radiology as much as for notes:

* ``rule out``, ``evaluate for``, ``to exclude`` make a finding *uncertain*, not negated or
  hypothetical: the question is open (NegEx lists "rule out" as a possibility trigger, and so
  does medspaCy's POSSIBLE_EXISTENCE).
* ``prior``, ``previous``, ``known``, ``history of``, ``status post`` make a finding
  *historical*, but a "current" word in the same scope (``unchanged``, ``stable``,
  ``persistent``, ``again seen``, ``remains``, ``now``, ``new``, ``increased``...) brings it
  back to *recent*: "prior nodule unchanged" and "previously seen effusion persists" describe
  what the current study shows; comparison phrases ("unchanged from the prior examination",
  "compared to the prior study") are pseudo-triggers. A measurement is historical when the
  historical word is nearer to it than any current one: "now measuring 25 mm (previously
  21 mm)" has a recent 25 mm and a historical 21 mm.
* ``should`` is hypothetical only as a sentence's first word ("Should pneumonia develop");
  "should not be mistaken for pneumothorax" is a negation.
* Sections: entities under ``past_medical_history`` are historical; ``family_history``
  makes the experiencer *other*; ``discharge_instructions`` makes them hypothetical; a
  procedure under ``comparison``, or followed by a date ("CT chest of 1/28/20"), is the
  earlier study (historical).
* Procedures: a recommended, suggested or advised one ("Tissue sampling is recommended"),
  or one named as a follow-up or repeat study ("Follow-up CT in 6 months"), is
  hypothetical; these recommendation words modify procedures only. A
  ``history`` section (indication, reason for exam, HPI) does *not* make an entity
  historical: it states the current question ("Rule out pneumonia"), which its own triggers
  already qualify.
* Assertion applies to findings, devices, medications and procedures. Anatomy is not
  asserted (the lung exists in "no nodule in the lung"), and a measurement takes only its
  temporality from triggers (a number is not negated or uncertain; its finding is).

Written here rather than taken from medspaCy: medspaCy 1.3.1 pins spaCy < 3.8 (it only runs
on 3.8 installed with ``--no-deps``) and is the benchmark reference this pipeline is measured
against, with four components (PyRuSH, TargetMatcher, ConText, Sectionizer) each passing over
spaCy objects; this works on character offsets from one shared matcher pass, 10-30x faster on
the same notes (bench/text_throughput.py).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

from medsight.text.pipeline.annotations import Entity, Section
from medsight.text.pipeline.targets import TriggerMatch

#: entity types that get negation, certainty and experiencer
ASSERTED_TYPES = frozenset({"finding", "device", "medication", "procedure"})
#: sections whose entities are historical / of someone else / hypothetical
SECTION_TEMPORALITY = {
    "past_medical_history": "historical",
    "discharge_instructions": "hypothetical",
}
SECTION_EXPERIENCER = {"family_history": "other"}
#: a procedure named in a comparison section is the earlier study
SECTION_PROCEDURE_TEMPORALITY = {"comparison": "historical"}
#: a procedure named as a follow-up or repeat study is planned, not done
_PLANNED = re.compile(r"^(?:follow[- ]?up|repeat|surveillance)\b", re.IGNORECASE)
#: a procedure followed by "of|from|dated <a date>" is a study done then ("CT chest of 1/28/20")
_DATED = re.compile(
    r"\s+(?:of|from|dated)\s+(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}\s+[A-Z][a-z]{2,8}\.?\s+\d{4}"
    r"|[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4})"
)
_LIST_LEAD = " \t\n-*\u20220123456789.)("


def _blocked(
    terminators: Sequence[tuple[int, tuple[str, ...]]], lo: int, hi: int, category: str
) -> bool:
    """Whether a terminator for ``category`` lies between character offsets lo and hi."""
    for position, categories in terminators:
        if lo <= position < hi and (not categories or category in categories):
            return True
    return False


def _categories_over(
    entity: Entity,
    triggers: Sequence[TriggerMatch],
    terminators: Sequence[tuple[int, tuple[str, ...]]],
    text: str,
    sentence_start: int,
) -> dict[str, int]:
    """The categories of the triggers whose scope covers ``entity``, each with the distance
    (characters) from the entity to its nearest such trigger."""
    found: dict[str, int] = {}
    for trigger in triggers:
        for rule in trigger.rules:
            if rule.category == "terminate" or (rule.types and entity.type not in rule.types):
                continue
            if rule.sentence_start and text[sentence_start : trigger.start_char].strip(_LIST_LEAD):
                continue
            direction = rule.direction
            if trigger.end_char <= entity.start and direction in ("forward", "bidirectional"):
                lo, hi = trigger.end_char, entity.start
            elif trigger.start_char >= entity.end and direction in ("backward", "bidirectional"):
                lo, hi = entity.end, trigger.start_char
            else:
                continue
            if not _blocked(terminators, lo, hi, rule.category):
                found[rule.category] = min(hi - lo, found.get(rule.category, hi - lo))
    return found


def apply_context(
    text: str,
    entities: Sequence[Entity],
    triggers: Sequence[TriggerMatch],
    sentences: Sequence[tuple[int, int]],
    sections: Sequence[Section],
    inner_negated: Sequence[bool] | None = None,
) -> None:
    """Set each entity's sentence, section and assertion values in place.

    Args:
        text: the note.
        entities: entities in text order.
        triggers: trigger matches in text order (pseudo-triggers already removed).
        sentences: sentence spans in order.
        sections: sections in order.
        inner_negated: per entity, whether its own words negate it ("heart is not enlarged").
    """
    starts = [s[0] for s in sentences]
    section_starts = [s.start for s in sections]
    by_sentence: dict[int, list[TriggerMatch]] = {}
    for trigger in triggers:
        by_sentence.setdefault(bisect_right(starts, trigger.start_char) - 1, []).append(trigger)
    for n, entity in enumerate(entities):
        index = max(bisect_right(starts, entity.start) - 1, 0)
        entity.sentence = index
        k = bisect_right(section_starts, entity.start) - 1
        section = sections[k].name if k >= 0 else None
        entity.section = section
        if entity.type not in ASSERTED_TYPES and entity.type != "measurement":
            continue
        local = by_sentence.get(index, ())
        terminators = [
            (t.start_char, rule.categories)
            for t in local
            for rule in t.rules
            if rule.category == "terminate"
        ]
        sentence_start = sentences[index][0] if sentences else 0
        found: dict[str, int] = (
            _categories_over(entity, local, terminators, text, sentence_start) if local else {}
        )
        historical = "historical" in found
        if entity.type == "measurement":
            # the nearer of a historical and a current word decides: "now 25 mm (previously
            # 21 mm)", "prior nodule unchanged: 16 mm"
            if historical and found["historical"] < found.get("current", len(text)):
                entity.temporality = "historical"
            continue
        if "negated" in found or (inner_negated is not None and inner_negated[n]):
            entity.negation = "negated"
        if "uncertain" in found:
            entity.certainty = "uncertain"
        if "other" in found or SECTION_EXPERIENCER.get(section or "") == "other":
            entity.experiencer = "other"
        by_section = SECTION_TEMPORALITY.get(section or "")
        if entity.type == "procedure":
            by_section = by_section or SECTION_PROCEDURE_TEMPORALITY.get(section or "")
            if _PLANNED.match(entity.text):
                by_section = "hypothetical"
            elif _DATED.match(text, entity.end):
                by_section = "historical"
        if "hypothetical" in found or by_section == "hypothetical":
            entity.temporality = "hypothetical"
        elif (historical or by_section == "historical") and "current" not in found:
            entity.temporality = "historical"
