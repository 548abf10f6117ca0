"""Per-class decision weights: a class the plain argmax never calls gets called."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.evaluate.classification.class_decision import (
    evaluate_class_weights,
    fit_class_weights,
    per_class_sensitivity,
    read_decision_weights,
    weighted_predictions,
    write_decision_rule,
)

NAMES = ["normal", "benign", "malignant"]


def _under_confident_benign(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that rank benign cases well but never make benign the argmax (like
    the under-trained demo model of issue 15)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    probs = np.empty((len(y), 3))
    for i, label in enumerate(y):
        if label == 0:
            p = [0.6, 0.1, 0.3]
        elif label == 1:
            p = [0.45, 0.25, 0.30]  # benign's own probability is never the largest
        else:
            p = [0.2, 0.1, 0.7]
        noisy = np.asarray(p) + rng.normal(0, 0.03, 3)
        probs[i] = np.clip(noisy, 0.01, None) / np.clip(noisy, 0.01, None).sum()
    return probs, y


def test_argmax_misses_a_class_the_fitted_rule_calls():
    val_p, val_y = _under_confident_benign(20, seed=0)
    test_p, test_y = _under_confident_benign(20, seed=1)
    assert per_class_sensitivity(test_y, test_p.argmax(1), 3)[1] == 0.0
    result = evaluate_class_weights(
        val_p, val_y, test_p, test_y, [f"p{i}" for i in range(len(test_y))], NAMES, n_boot=50
    )
    test = result["test"]
    for name in NAMES:
        assert test["per_class"][name]["sensitivity"]["point"] >= 0.9, name
    assert test["balanced_accuracy"]["point"] >= 0.9
    assert result["argmax_test_sensitivity"]["benign"] == 0.0
    assert result["weights"]["normal"] == 1.0
    assert result["weights"]["benign"] > 1.0
    low, high = (
        test["per_class"]["benign"]["sensitivity"]["low"],
        test["per_class"]["benign"]["sensitivity"]["high"],
    )
    assert low <= test["per_class"]["benign"]["sensitivity"]["point"] <= high


def test_a_good_argmax_keeps_weights_at_one_and_fitting_is_deterministic():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 15)
    probs = np.full((45, 3), 0.1)
    probs[np.arange(45), y] = 0.8
    probs += rng.uniform(0, 0.01, probs.shape)
    weights = fit_class_weights(probs, y)
    np.testing.assert_allclose(weights, 1.0)
    assert (weighted_predictions(probs, weights) == y).all()
    again = _under_confident_benign(20, seed=0)
    np.testing.assert_array_equal(fit_class_weights(*again), fit_class_weights(*again))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="need probabilities"):
        fit_class_weights(np.ones((4, 1)), np.zeros(4, dtype=int))


def test_saved_rule_round_trip_and_bad_files(tmp_path):
    assert read_decision_weights(tmp_path, NAMES) is None  # not evaluated yet
    write_decision_rule(tmp_path, NAMES, {"normal": 1.0, "benign": 2.5, "malignant": 0.8})
    np.testing.assert_allclose(read_decision_weights(tmp_path, NAMES), [1.0, 2.5, 0.8])
    with pytest.raises(InputError, match="classes"):
        read_decision_weights(tmp_path, ["a", "b"])
    (tmp_path / "decision.json").write_text(
        json.dumps({"class_names": NAMES, "weights": [1, -1, 1]})
    )
    with pytest.raises(InputError, match="positive"):
        read_decision_weights(tmp_path, NAMES)
    (tmp_path / "decision.json").write_text("{not json")
    with pytest.raises(InputError, match="not a decision rule"):
        read_decision_weights(tmp_path, NAMES)
