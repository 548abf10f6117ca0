"""`TextPipeline`: a note in, its sections, sentences and entities with assertion context out.

Steps, all by rule: section headers (`sections`), sentences (`sentences`), spaCy's blank
English tokenizer on the text with its whitespace folded (`spacing`), one matcher pass for
entity targets and ConText triggers (`targets`), sizes (`measurements`), ConText
(`context`), then each size given to its finding. The spaCy ``Language`` and its matchers
are built once per pipeline; ``default_pipeline()`` keeps one per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from medsight.text.io.note import Note
from medsight.text.pipeline.annotations import AnalyzedNote, Entity, Section
from medsight.text.pipeline.context import apply_context
from medsight.text.pipeline.lexicon import Lexicon, load_lexicon
from medsight.text.pipeline.measurements import attach_sizes, find_measurements
from medsight.text.pipeline.sections import find_headers, sections_of
from medsight.text.pipeline.sentences import split_sentences
from medsight.text.pipeline.spacing import FoldedText, fold_space
from medsight.text.pipeline.targets import RuleMatcher, TargetMatch, TriggerMatch, negates_itself


class TextPipeline:
    """The rule pipeline (cheap to reuse: build once, analyse many notes)."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        """Load the rules and build the tokenizer and matchers.

        Args:
            lexicon: targets and triggers; default the packaged ones.
        """
        import spacy

        self.lexicon = lexicon or load_lexicon()
        self.nlp = spacy.blank("en")
        self.matcher = RuleMatcher(self.nlp, self.lexicon)

    def analyze(self, note: Note) -> AnalyzedNote:
        """Analyse one note."""
        return self.analyze_text(note.text, note.note_id)

    def analyze_text(self, text: str, note_id: str = "") -> AnalyzedNote:
        """Analyse a text that is not (yet) a `Note`."""
        folded = fold_space(text)
        return self._analyze(note_id, text, self.nlp.make_doc(folded.text), folded)

    def pipe(self, notes: Iterable[Note], batch_size: int = 64) -> Iterator[AnalyzedNote]:
        """Analyse notes in a stream (tokenised in batches), in order."""
        pending: list[Note] = []
        for note in notes:
            pending.append(note)
            if len(pending) >= batch_size:
                yield from self._batch(pending)
                pending = []
        if pending:
            yield from self._batch(pending)

    def _batch(self, notes: list[Note]) -> Iterator[AnalyzedNote]:
        tokenizer: Any = self.nlp.tokenizer
        folded = [fold_space(n.text) for n in notes]
        docs = tokenizer.pipe([f.text for f in folded], batch_size=len(notes))
        for note, fold, doc in zip(notes, folded, docs, strict=True):
            yield self._analyze(note.note_id, note.text, doc, fold)

    def context_of(self, text: str, spans: list[tuple[int, int, str]]) -> list[Entity]:
        """Assertion context and section for entity spans found by someone else.

        Args:
            text: the note.
            spans: ``(start, end, type)`` character spans (e.g. from a trained tagger).

        Returns:
            One `Entity` per span, in the order given; its concept is the lexicon's for its
            words when they are a known phrase, else its lower-cased text.
        """
        folded = fold_space(text)
        doc = self.nlp.make_doc(folded.text)
        sections, sentences = self._layout(text)
        token_spans = []
        for start, end, _ in spans:
            span = doc.char_span(folded.folded(start), folded.folded(end), alignment_mode="expand")
            if span is not None:
                token_spans.append((span.start, span.end))
        _, triggers = self.matcher.match(doc, folded, targets=False, given=token_spans)
        entities = []
        inner = []
        for start, end, type_ in spans:
            words = " ".join(text[start:end].lower().split())
            known = self.lexicon.concepts.get(words)
            concept = known[1] if known is not None else words
            entities.append(Entity(start, end, type_, text[start:end], concept))
            inner.append(negates_itself(words.split()))
        order = sorted(range(len(entities)), key=lambda i: entities[i].start)
        apply_context(
            text,
            [entities[i] for i in order],
            triggers,
            sentences,
            sections,
            [inner[i] for i in order],
        )
        return entities

    def _layout(self, text: str) -> tuple[list[Section], list[tuple[int, int]]]:
        headers = find_headers(text)
        breaks = [offset for start, end, _ in headers for offset in (start, end)]
        return sections_of(text, headers), split_sentences(text, breaks)

    def _analyze(self, note_id: str, text: str, doc: Any, folded: FoldedText) -> AnalyzedNote:
        sections, sentences = self._layout(text)
        targets, triggers = self.matcher.match(doc, folded)
        entities, inner = _entities(text, targets, triggers)
        apply_context(text, entities, triggers, sentences, sections, inner)
        attach_sizes(entities, [s[0] for s in sentences])
        return AnalyzedNote(
            note_id=note_id, sections=sections, sentences=sentences, entities=entities
        )


def _entities(
    text: str, targets: list[TargetMatch], triggers: list[TriggerMatch]
) -> tuple[list[Entity], list[bool]]:
    """Target and measurement entities in text order (a size inside a target is dropped)."""
    entities = [
        Entity(t.start_char, t.end_char, t.type, text[t.start_char : t.end_char], t.concept)
        for t in targets
    ]
    inner = [t.negated_inside for t in targets]
    sizes = find_measurements(text)
    if sizes:
        covered = [(e.start, e.end) for e in entities]
        for size in sizes:
            if not any(s < size.end and size.start < e for s, e in covered):
                entities.append(size)
                inner.append(False)
        order = sorted(range(len(entities)), key=lambda i: entities[i].start)
        entities = [entities[i] for i in order]
        inner = [inner[i] for i in order]
    return entities, inner


@lru_cache(maxsize=1)
def default_pipeline() -> TextPipeline:
    """The packaged rules' pipeline, built on first use and kept for the process."""
    return TextPipeline()
