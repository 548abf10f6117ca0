"""Tagger tokens keep exact character offsets, and spans survive the trip through BIO tags."""

from __future__ import annotations

from medsight.text.models.tagger_tokens import (
    misaligned_spans,
    spans_to_tags,
    tag_names,
    tags_to_spans,
    tokenize,
)
from medsight.text.models.tagger_vocabulary import Vocabulary, word_shape

TEXT = "Pt. Jane O'Neil (MRN 0012345), seen 03/14/2101; nódulo 8mm RUL.\nCall 555-123-4567."


def test_every_token_is_its_own_slice_of_the_text() -> None:
    tokens = tokenize(TEXT)
    assert all(TEXT[t.start : t.end] == t.text for t in tokens)
    assert "".join(t.text for t in tokens) == "".join(TEXT.split())
    # digits and letters split ("8mm" -> "8", "mm"), so a measurement span can end on "8"
    assert [t.text for t in tokens if t.text in ("8", "mm")] == ["8", "mm"]
    assert "nódulo" in [t.text for t in tokens]


def test_spans_round_trip_through_bio_tags() -> None:
    tokens = tokenize(TEXT)
    spans = [
        (4, 15, "NAME"),
        (TEXT.index("0012345"), TEXT.index("0012345") + 7, "ID"),
        (TEXT.index("03/"), TEXT.index("03/") + 10, "DATE"),
        (TEXT.index("555"), TEXT.index("555") + 12, "PHONE"),
    ]
    tags = spans_to_tags(tokens, spans)
    assert tags_to_spans(tokens, tags) == sorted(spans)
    assert misaligned_spans(tokens, spans) == 0
    # two adjacent spans of one type stay two spans
    adjacent = [(4, 8, "NAME"), (9, 15, "NAME")]
    assert tags_to_spans(tokens, spans_to_tags(tokens, adjacent)) == adjacent


def test_a_span_inside_a_token_is_widened_and_counted() -> None:
    tokens = tokenize("seen by Johnson today")
    spans = [(8, 12, "NAME")]  # "John" of "Johnson"
    assert misaligned_spans(tokens, spans) == 1
    assert tags_to_spans(tokens, spans_to_tags(tokens, spans)) == [(8, 15, "NAME")]


def test_tag_names_and_shapes() -> None:
    assert tag_names(["A", "B"]) == ["O", "B-A", "I-A", "B-B", "I-B"]
    assert word_shape("Johnson") == "Xx" and word_shape("0012345") == "d"


def test_vocabulary_leaves_out_phi_tokens_and_numbers() -> None:
    tokens = ["seen", "seen", "Anna", "Anna", "2101", "1999"]
    vocabulary = Vocabulary.build(tokens, min_count=2, exclude=["Anna"])
    assert "anna" not in vocabulary.words and vocabulary.word("Anna") == 1
    assert vocabulary.word("seen") > 1
    # a number has no word entry: its shape and characters say what it is, not its digit count
    assert vocabulary.word("2101") == vocabulary.word("1999") == 1
