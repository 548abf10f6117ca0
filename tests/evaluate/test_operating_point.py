import json

import numpy as np
import pytest

from medsight.evaluate.classification.operating_point import OperatingPoint, positive_score

NAMES = ["normal", "benign", "malignant"]


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    logits = rng.normal(size=(n, 3)) + 1.3 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ids = np.array([f"P{i // 2}" for i in range(n)])
    return y, probs, ids


def sensitivity_specificity(truth: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    return float(called[truth].mean()), float((~called[~truth]).mean())


@pytest.mark.parametrize("positive", [[1, 2], [2]])
def test_target_sensitivity_is_reached_on_validation_with_the_highest_threshold(
    positive: list[int],
) -> None:
    y, probs, _ = synthetic(300, seed=0)
    op = OperatingPoint(positive, method="sensitivity", target_sensitivity=0.95).fit(probs, y)
    truth = np.isin(y, positive)
    score = positive_score(probs, positive)
    sens, spec = sensitivity_specificity(truth, score >= op.threshold_)
    assert sens >= 0.95
    assert op.validation_["sensitivity"] == pytest.approx(sens)
    assert op.validation_["specificity"] == pytest.approx(spec)
    # Any higher threshold misses the target: no specificity was given away needlessly.
    higher = np.min(score[score > op.threshold_])
    assert sensitivity_specificity(truth, score >= higher)[0] < 0.95


def test_youden_threshold_maximises_j_on_validation() -> None:
    y, probs, _ = synthetic(200, seed=1)
    op = OperatingPoint([1, 2], method="youden").fit(probs, y)
    truth = y > 0
    score = positive_score(probs, [1, 2])
    best = max(sum(sensitivity_specificity(truth, score >= t)) - 1 for t in np.unique(score))
    sens, spec = sensitivity_specificity(truth, op.predict(probs))
    assert sens + spec - 1 == pytest.approx(best)


def test_test_report_counts_and_intervals() -> None:
    y_val, p_val, _ = synthetic(300, seed=2)
    y_test, p_test, ids = synthetic(200, seed=3)
    op = OperatingPoint([2], method="sensitivity", target_sensitivity=0.9).fit(p_val, y_val)
    report = op.evaluate(p_test, y_test, ids, class_names=NAMES, n_boot=300, seed=0)
    assert json.loads(json.dumps(report)) == report
    test = report["test"]
    assert test["tp"] + test["fp"] + test["fn"] + test["tn"] == 200
    assert test["n_positive"] == int((y_test == 2).sum()) == test["tp"] + test["fn"]
    assert test["n_patients"] == 100
    assert report["positive_class_names"] == ["malignant"]
    assert report["target_sensitivity"] == 0.9
    assert test["sensitivity"]["point"] == pytest.approx(test["tp"] / (test["tp"] + test["fn"]))
    assert test["npv"]["point"] == pytest.approx(test["tn"] / (test["tn"] + test["fn"]))
    for rate in ("sensitivity", "specificity", "ppv", "npv"):
        ci = test[rate]
        assert ci["low"] <= ci["point"] <= ci["high"]
        assert ci["n_boot_valid"] == 300


def test_invalid_settings_are_rejected() -> None:
    y, probs, _ = synthetic(50, seed=4)
    with pytest.raises(ValueError, match="every class"):
        OperatingPoint([0, 1, 2]).fit(probs, y)
    with pytest.raises(ValueError, match="0..2"):
        OperatingPoint([3]).fit(probs, y)
    with pytest.raises(ValueError, match="positives and negatives"):
        OperatingPoint([1]).fit(probs, np.zeros(50, dtype=int))
    with pytest.raises(RuntimeError, match="not fitted"):
        OperatingPoint([1]).predict(probs)
