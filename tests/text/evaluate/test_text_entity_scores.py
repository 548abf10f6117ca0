"""Entity P/R/F1: exact and overlap, per type and micro, on hand-counted examples."""

from __future__ import annotations

import pytest
from seqeval.metrics import classification_report

from medsight.text.evaluate.entity_scores import entity_scores
from medsight.text.pipeline.annotations import Entity


def span(start: int, end: int, kind: str) -> dict:
    return {"start": start, "end": end, "type": kind}


def test_exact_and_overlap_counts_per_type_and_micro() -> None:
    gold = [
        [span(0, 5, "finding"), span(10, 20, "anatomy"), span(30, 35, "finding")],
        [span(0, 4, "device")],
    ]
    predicted = [
        # one exact finding, one finding shifted by 2 (overlap only), anatomy exact
        [span(0, 5, "finding"), span(32, 38, "finding"), span(10, 20, "anatomy")],
        # a device entity typed as a finding: wrong type, counts for neither
        [span(0, 4, "finding")],
    ]
    scores = entity_scores(gold, predicted)
    assert scores["types"] == ["anatomy", "device", "finding"]
    finding = scores["exact"]["per_type"]["finding"]
    assert (finding["tp_gold"], finding["n_predicted"], finding["n_gold"]) == (1, 3, 2)
    assert finding["precision"] == pytest.approx(1 / 3)
    assert finding["recall"] == pytest.approx(1 / 2)
    assert finding["f1"] == pytest.approx(0.4)
    overlap = scores["overlap"]["per_type"]["finding"]
    assert overlap["precision"] == pytest.approx(2 / 3)
    assert overlap["recall"] == pytest.approx(1.0)
    device = scores["exact"]["per_type"]["device"]
    assert device["precision"] is None and device["recall"] == 0.0 and device["f1"] == 0.0
    micro = scores["exact"]["micro"]
    # 2 exact hits (finding, anatomy) of 4 predicted and 4 gold
    assert (micro["precision"], micro["recall"], micro["f1"]) == (0.5, 0.5, 0.5)
    assert scores["exact"]["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.4) / 3)


def test_records_and_mappings_are_accepted_and_types_restrict() -> None:
    gold = {"a": [Entity(0, 5, "finding", "x", "x")], "b": [span(1, 3, "anatomy")]}
    predicted = {"a": [span(0, 5, "finding")]}  # note b missing: nothing predicted there
    scores = entity_scores(gold, predicted, types=["finding"])
    assert scores["n_notes"] == 2
    assert scores["types"] == ["finding"]
    assert scores["exact"]["micro"]["f1"] == 1.0


def test_unpaired_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 gold notes but 1 predicted"):
        entity_scores([[], []], [[]])


def _bio(text_tokens: list[tuple[int, int]], spans: list[dict]) -> list[str]:
    tags = []
    for start, _end in text_tokens:
        tag = "O"
        for s in spans:
            if start == s["start"]:
                tag = "B-" + s["type"]
            elif s["start"] < start < s["end"]:
                tag = "I-" + s["type"]
        tags.append(tag)
    return tags


def test_exact_scores_equal_seqeval_strict_on_non_overlapping_spans() -> None:
    text = "no right pleural effusion small left pneumothorax and chest tube"
    tokens, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        tokens.append((start, start + len(word)))
        pos = start + len(word)
    s = lambda a, b, k: span(tokens[a][0], tokens[b][1], k)  # noqa: E731 (token indices)
    gold = [s(1, 1, "anatomy"), s(2, 3, "finding"), s(6, 6, "finding"), s(8, 9, "device")]
    pred = [s(1, 3, "finding"), s(6, 6, "finding"), s(9, 9, "device")]
    ours = entity_scores([gold], [pred])["exact"]
    report = classification_report(
        [_bio(tokens, gold)], [_bio(tokens, pred)], mode="strict", output_dict=True, zero_division=0
    )
    assert ours["micro"]["precision"] == pytest.approx(report["micro avg"]["precision"])
    assert ours["micro"]["recall"] == pytest.approx(report["micro avg"]["recall"])
    assert ours["per_type"]["finding"]["f1"] == pytest.approx(report["finding"]["f1-score"])
