"""Wrapped lines: triggers and targets match across line breaks, offsets stay the note's."""

from __future__ import annotations

from medsight.text.pipeline.analyze import TextPipeline
from medsight.text.pipeline.spacing import fold_space


def test_folding_maps_offsets_both_ways() -> None:
    text = "no\n   pleural\teffusion  seen"
    folded = fold_space(text)
    assert folded.text == "no pleural effusion seen"
    for word in ("no", "pleural", "effusion", "seen"):
        start = folded.text.index(word)
        original = folded.original(start)
        assert text[original : folded.original(start + len(word))] == word
        assert folded.folded(original) == start
    assert fold_space("one two").text == "one two"


def test_a_trigger_broken_over_two_lines_still_counts(pipeline: TextPipeline) -> None:
    text = "Opacity likely atelectasis but cannot\n  exclude pneumonia in the right\n setting."
    pneumonia = next(e for e in pipeline.analyze_text(text).entities if e.text == "pneumonia")
    assert (pneumonia.negation, pneumonia.certainty) == ("affirmed", "uncertain")
    wrapped = "There is a small left pleural\n effusion."
    (effusion,) = [e for e in pipeline.analyze_text(wrapped).entities if e.type == "finding"]
    assert effusion.text == "pleural\n effusion" and effusion.concept == "pleural_effusion"


def test_typed_lower_case_sentences_and_negation_scope(pipeline: TextPipeline) -> None:
    text = "no pneumothorax. bilateral hazy opacities and small pleural effusions."
    entities = {e.text: e for e in pipeline.analyze_text(text).entities}
    assert entities["pneumothorax"].negation == "negated"
    assert entities["pleural effusions"].negation == "affirmed"
    tube = "An orogastric tube courses into the stomach, its full course not visualized."
    assert pipeline.analyze_text(tube).entities[0].negation == "affirmed"
    still = "Consolidation in the right lower lobe has not cleared."
    assert pipeline.analyze_text(still).entities[0].negation == "affirmed"
