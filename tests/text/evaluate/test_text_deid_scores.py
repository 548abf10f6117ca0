"""De-identification scores: strict recall per type, lenient precision, leaked strings."""

from __future__ import annotations

import pytest

from medsight.text.evaluate.deid_scores import deid_scores, leaked

TEXT = "Seen by Dr Anna Berg on 2012-03-04, MRN 123456. Age 12."


def at(fragment: str, kind: str) -> dict:
    start = TEXT.index(fragment)
    return {"start": start, "end": start + len(fragment), "type": kind}


def test_recall_precision_and_leaks_by_hand() -> None:
    gold = [at("Anna Berg", "NAME"), at("2012-03-04", "DATE"), at("123456", "ID")]
    predicted = [
        at("Anna", "NAME"),  # only half the name: partial, not recalled
        at("2012-03-04", "DATE"),
        at("MRN 123456", "ID"),  # covers the gold ID
        at("Age", "AGE"),  # no gold here: a false positive
    ]
    deidentified = "Seen by Dr [NAME] Berg on [DATE], [ID]. Age 12."
    scores = deid_scores([TEXT], [gold], [predicted], [deidentified])
    assert scores["n_gold"] == 3 and scores["n_predicted"] == 4
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["precision"] == pytest.approx(3 / 4)
    assert scores["partial"] == 1
    assert scores["per_type"]["NAME"] == {
        "n_gold": 1,
        "recalled": 0,
        "partial": 1,
        "leaked": 0,
        "recall": 0.0,
    }
    # "Anna Berg" does not stand verbatim in the output ("Berg" alone does): no leak counted
    assert scores["leaked"] == 0


def test_a_gold_string_left_elsewhere_in_the_note_leaks() -> None:
    text = "MRN 123456; repeat MRN 123456"
    gold = [{"start": 4, "end": 10, "type": "ID"}]
    predicted = [{"start": 4, "end": 10, "type": "ID"}]
    scores = deid_scores([text], [gold], [predicted], ["MRN [ID]; repeat MRN 123456"])
    assert scores["recall"] == 1.0
    assert scores["leaked"] == 1
    assert scores["per_type"]["ID"]["leaked"] == 1
    assert scores["leaked_notes"] == ["0"]


def test_leak_needs_a_whole_word_or_number() -> None:
    assert not leaked("12", "in 2012")
    assert leaked("12", "age 12.")
    assert leaked(" Berg ", "Dr Berg")
    assert not leaked("  ", "anything")


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        deid_scores([TEXT], [[]], [], [TEXT])


def test_ages_up_to_89_are_not_phi_unless_asked() -> None:
    text = "A 72-year-old seen with her 93 year old mother."
    gold = [
        {"start": 2, "end": 4, "type": "AGE"},
        {"start": 28, "end": 30, "type": "AGE"},
    ]
    predicted = [{"start": 28, "end": 30, "type": "AGE"}]
    deidentified = "A 72-year-old seen with her [AGE] year old mother."
    scores = deid_scores([text], [gold], [predicted], [deidentified])
    assert (scores["recall"], scores["leaked"], scores["ages_not_phi"]) == (1.0, 0, 1)
    strict = deid_scores([text], [gold], [predicted], [deidentified], ages_over=None)
    assert (strict["recall"], strict["leaked"], strict["ages_not_phi"]) == (0.5, 1, 0)


def test_safe_harbor_age_category_is_not_a_leak() -> None:
    assert not leaked("90", "Age: 90+", "AGE")
    assert leaked("90", "Age: 90.", "AGE")
    assert leaked("90", "room 90+", "ID")
