"""The TF-IDF + logistic baseline: learns, saves as JSON (no pickle), predicts the same."""

from __future__ import annotations

import json

import numpy as np

from medsight.text.baselines.tfidf_logistic import TfidfLogistic

TEXTS = [
    "kind helpful staff",
    "rude slow staff",
    "average usual stay",
    "caring kind nurse",
    "dirty rude ward",
    "ordinary average food",
] * 6
LABELS = {"sentiment": ["positive", "negative", "neutral"] * 12}
CLASSES = {"sentiment": ["negative", "neutral", "positive", "unseen"]}


def test_baseline_learns_and_its_json_predicts_the_same() -> None:
    model = TfidfLogistic().fit(TEXTS, LABELS)
    probs = model.predict_proba(["so kind and caring", "rude and dirty"], CLASSES)["sentiment"]
    assert list(probs.argmax(axis=1)) == [2, 0]
    assert np.all(probs[:, 3] == 0)  # a class never seen in training gets nothing
    saved = json.dumps(model.to_json())
    assert "vocabulary" in saved and "coef" in saved
    again = TfidfLogistic.from_json(json.loads(saved))
    same = again.predict_proba(["so kind and caring", "rude and dirty"], CLASSES)["sentiment"]
    np.testing.assert_array_equal(same, probs)


def test_unlabelled_notes_are_left_out_and_one_class_gives_that_class() -> None:
    labels = {"sentiment": [*LABELS["sentiment"][:-6], *[None] * 6], "kind": ["ward"] * 36}
    model = TfidfLogistic().fit(TEXTS, labels)
    probs = model.predict_proba(["kind"], {"kind": ["clinic", "ward"]})["kind"]
    np.testing.assert_allclose(probs, [[0.0, 1.0]])
