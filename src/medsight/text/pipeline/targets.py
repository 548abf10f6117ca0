"""Entity targets and ConText triggers found in one pass over a spaCy ``Doc``.

One ``PhraseMatcher`` on lower-cased tokens holds every target phrase and every trigger
literal, built once per pipeline; the few word patterns ("heart is mildly enlarged") are
regular expressions over the text whose matches are aligned to tokens (see `lexicon`).
Overlapping targets resolve to the longest (then the first); triggers resolve the same way
among themselves, and a trigger inside a target is not one ("free" in "free air").
Pseudo-triggers ("no change") win over the shorter triggers they contain and are then
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medsight.text.pipeline.lexicon import Lexicon, Trigger
from medsight.text.pipeline.spacing import FoldedText

#: words inside a target that negate it ("heart is not enlarged")
_INNER_NEGATION = frozenset({"not", "no", "non"})
#: trigger words that are also month names: not a trigger beside a number ("on May 14")
_MONTH_WORDS = frozenset({"may"})


def negates_itself(words: list[str]) -> bool:
    """Whether a multi-word target's own words negate it ("heart is not enlarged")."""
    return len(words) > 1 and any(w.lower() in _INNER_NEGATION for w in words)


def _beside_number(doc: Any, i: int) -> bool:
    return (i > 0 and doc[i - 1].like_num) or (i + 1 < len(doc) and doc[i + 1].like_num)


@dataclass(frozen=True)
class TargetMatch:
    """A target: token and character span, type, concept, and whether it negates itself."""

    start: int
    end: int
    start_char: int
    end_char: int
    type: str
    concept: str
    negated_inside: bool


@dataclass(frozen=True)
class TriggerMatch:
    """A trigger's character span and its rules (a literal can carry several)."""

    start_char: int
    end_char: int
    rules: tuple[Trigger, ...]


def _longest_first(
    spans: list[tuple[int, int, Any]], taken: bytearray
) -> list[tuple[int, int, Any]]:
    kept = []
    for start, end, info in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if any(taken[start:end]):
            continue
        taken[start:end] = b"\x01" * (end - start)
        kept.append((start, end, info))
    kept.sort(key=lambda s: s[0])
    return kept


class RuleMatcher:
    """Targets and triggers of a lexicon, matched on docs of one spaCy ``Language``."""

    def __init__(self, nlp: Any, lexicon: Lexicon) -> None:
        """Build the matchers (a few hundred ms; do it once).

        Args:
            nlp: a spaCy ``Language`` (its tokenizer makes the pattern docs).
            lexicon: targets and triggers.
        """
        from spacy.matcher import PhraseMatcher

        self.nlp = nlp
        self.phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        #: match id -> ("target", type, concept) or ("trigger", rules)
        self.info: dict[int, tuple[Any, ...]] = {}
        by_target: dict[str, list[str]] = {}
        for type_, concept, phrase in lexicon.phrases:
            by_target.setdefault(f"T\t{type_}\t{concept}", []).append(phrase)
        for key, words in by_target.items():
            _, type_, concept = key.split("\t")
            self.phrases.add(key, list(nlp.tokenizer.pipe(words)))
            self.info[nlp.vocab.strings[key]] = ("target", type_, concept)
        self.patterns = lexicon.word_patterns
        by_literal: dict[str, list[Trigger]] = {}
        for trigger in lexicon.triggers:
            by_literal.setdefault(trigger.literal, []).append(trigger)
        for literal, rules in by_literal.items():
            key = f"C\t{literal}"
            self.phrases.add(key, [nlp.tokenizer(literal)])
            self.info[nlp.vocab.strings[key]] = ("trigger", tuple(rules))

    def _pattern_matches(self, doc: Any) -> list[tuple[int, int, tuple[Any, ...]]]:
        """Token spans of the word patterns' matches (with whether they negate themselves)."""
        text = doc.text
        lower = text.lower()
        spans = []
        for type_, concept, pattern in self.patterns:
            if not any(anchor in lower for anchor in pattern.anchors):
                continue
            for found in pattern.regex.finditer(text):
                span = doc.char_span(found.start(), found.end(), alignment_mode="expand")
                if span is None or not len(span):
                    continue
                inner = negates_itself(found.group(0).split())
                spans.append((span.start, span.end, ("target", type_, concept, inner)))
        return spans

    def match(
        self,
        doc: Any,
        folded: FoldedText,
        *,
        targets: bool = True,
        given: list[tuple[int, int]] | None = None,
    ) -> tuple[list[TargetMatch], list[TriggerMatch]]:
        """Targets and triggers of ``doc``, with character offsets into the original text.

        Args:
            doc: a ``Doc`` of ``folded.text`` made by this matcher's ``nlp``.
            folded: the note's text with its whitespace folded (`spacing`).
            targets: whether to look for targets (False when the entities come from
                elsewhere, see ``given``).
            given: token spans (of ``doc``) of entities found by someone else; triggers
                inside them are dropped.

        Returns:
            Targets and (non-pseudo, non-overlapping) triggers, each in text order.
        """
        found = self.phrases(doc)
        info = self.info
        target_spans: list[tuple[int, int, Any]] = []
        if targets:
            target_spans += self._pattern_matches(doc)
        trigger_spans: list[tuple[int, int, Any]] = []
        for match_id, start, end in found:
            what = info[match_id]
            if what[0] == "target":
                if targets:
                    target_spans.append((start, end, (*what, False)))
            else:
                trigger_spans.append((start, end, what[1]))
        taken = bytearray(len(doc))
        kept_targets = _longest_first(target_spans, taken)
        for start, end in given or ():
            taken[start:end] = b"\x01" * (end - start)
        kept_triggers = _longest_first(trigger_spans, taken)
        out_targets = []
        for start, end, (_, type_, concept, inner) in kept_targets:
            span = doc[start:end]
            first, last = folded.original(span.start_char), folded.original(span.end_char)
            out_targets.append(TargetMatch(start, end, first, last, type_, concept, inner))
        out_triggers = []
        for start, end, rules in kept_triggers:
            if any(r.category == "pseudo" for r in rules):
                continue
            if (
                end - start == 1
                and doc[start].lower_ in _MONTH_WORDS
                and _beside_number(doc, start)
            ):
                continue
            span = doc[start:end]
            first, last = folded.original(span.start_char), folded.original(span.end_char)
            out_triggers.append(TriggerMatch(first, last, rules))
        return out_targets, out_triggers
