"""The rule sentence splitter: abbreviations, lists, blank lines, headers, wrapped lines."""

from __future__ import annotations

from medsight.text.pipeline.sentences import split_sentences


def _sentences(text: str, breaks: tuple[int, ...] = ()) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text, breaks)]


def test_full_stops_end_sentences_but_not_after_abbreviations_or_decimals() -> None:
    text = "Seen by Dr. Smith vs. Dr. Jones. Nodule is 1.2 cm. E.g. stable. Next one."
    assert _sentences(text) == [
        "Seen by Dr. Smith vs. Dr. Jones.",
        "Nodule is 1.2 cm.",
        "E.g. stable.",
        "Next one.",
    ]


def test_numbered_items_blank_lines_and_wrapped_lines() -> None:
    text = (
        "IMPRESSION:\n1. Small effusion.\n2. No pneumothorax\n\nIndication: man with suspected\n"
        " pneumonia and cough."
    )
    header_end = text.index(":") + 1
    assert _sentences(text, (0, header_end)) == [
        "IMPRESSION:",
        "1. Small effusion.",
        "2. No pneumothorax",
        "Indication: man with suspected\n pneumonia and cough.",
    ]


def test_short_lines_of_a_list_are_sentences_of_their_own() -> None:
    text = "Metformin 500 mg\nLisinopril 10 mg daily\nAspirin 81 mg"
    assert _sentences(text) == ["Metformin 500 mg", "Lisinopril 10 mg daily", "Aspirin 81 mg"]


def test_times_and_underscores_of_deidentified_reports() -> None:
    text = "Film submitted at 4:45 p.m. Many films since. Compared to ___. ___ was notified."
    assert _sentences(text) == [
        "Film submitted at 4:45 p.m.",
        "Many films since.",
        "Compared to ___.",
        "___ was notified.",
    ]
