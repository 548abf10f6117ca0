"""Assertion scores on matched entities: matching, accuracy and per-value F1 by hand."""

from __future__ import annotations

import pytest

from medsight.text.evaluate.assertion_scores import assertion_scores, match_entities


def ent(start: int, end: int, negation: str = "affirmed", **kw: str) -> dict:
    return {
        "start": start,
        "end": end,
        "type": kw.pop("type", "finding"),
        "negation": negation,
        **kw,
    }


def test_matching_prefers_exact_spans_then_largest_overlap() -> None:
    gold = [ent(0, 10), ent(20, 30)]
    predicted = [ent(22, 28), ent(18, 31), ent(0, 10), ent(40, 45)]
    pairs = match_entities(gold, predicted)
    assert [(g["start"], p["start"]) for g, p in pairs] == [(0, 0), (20, 18)]


def test_negation_accuracy_and_per_value_f1() -> None:
    gold = [[ent(0, 5, "negated"), ent(10, 15, "negated"), ent(20, 25), ent(30, 35)], [ent(0, 3)]]
    predicted = [
        [ent(0, 5, "negated"), ent(10, 16, "affirmed"), ent(20, 25, "negated"), ent(50, 55)],
        [ent(0, 3, type="anatomy")],  # other type: not matched
    ]
    scores = assertion_scores(gold, predicted, attributes={"negation": ("affirmed", "negated")})
    assert (scores["n_gold"], scores["n_predicted"], scores["n_matched"]) == (5, 5, 3)
    negation = scores["attributes"]["negation"]
    assert negation["n"] == 3
    assert negation["accuracy"] == pytest.approx(1 / 3)
    negated = negation["values"]["negated"]
    # gold negated: 2 (one found); predicted negated: 2 (one right)
    assert (negated["precision"], negated["recall"], negated["f1"]) == (0.5, 0.5, 0.5)
    affirmed = negation["values"]["affirmed"]
    assert (affirmed["precision"], affirmed["recall"], affirmed["f1"]) == (0.0, 0.0, 0.0)
    assert negation["macro_f1"] == pytest.approx(0.25)


def test_missing_gold_value_is_skipped_and_missing_prediction_is_wrong() -> None:
    gold = [[ent(0, 5, temporality="historical"), {"start": 9, "end": 12, "type": "finding"}]]
    predicted = [[{"start": 0, "end": 5, "type": "finding"}, ent(9, 12, temporality="recent")]]
    temporality = assertion_scores(gold, predicted)["attributes"]["temporality"]
    assert temporality["n"] == 1
    assert temporality["accuracy"] == 0.0
    assert temporality["values"]["historical"]["recall"] == 0.0
    assert temporality["values"]["hypothetical"]["f1"] is None  # none on either side
