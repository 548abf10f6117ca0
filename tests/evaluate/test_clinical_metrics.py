import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize

from medsight.evaluate.classification.clinical_metrics import clinical_metrics, metric_samples

NAMES = ["normal", "benign", "malignant"]


@pytest.fixture
def cases() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], [14, 10, 8])
    logits = rng.normal(size=(len(y), 3)) + 1.2 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # Every class predicted at least once, so scikit-learn's zero_division never applies.
    assert set(probs.argmax(axis=1)) == {0, 1, 2}
    return y, probs


def test_matches_sklearn(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    pred = probs.argmax(axis=1)
    onehot = label_binarize(y, classes=[0, 1, 2])
    m = clinical_metrics(y, probs, NAMES)

    assert m["overall"]["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["overall"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    expected = {
        "ppv": precision_score(y, pred, average=None),
        "sensitivity": recall_score(y, pred, average=None),
        "f1": f1_score(y, pred, average=None),
        "roc_auc": [roc_auc_score(y == c, probs[:, c]) for c in range(3)],
        "pr_auc": average_precision_score(onehot, probs, average=None),
    }
    for metric, values in expected.items():
        for c, name in enumerate(NAMES):
            assert m["per_class"][name][metric] == pytest.approx(values[c]), (metric, name)
        assert m["macro"][metric] == pytest.approx(np.mean(values)), metric
    assert m["macro"]["roc_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert m["macro"]["pr_auc"] == pytest.approx(
        average_precision_score(onehot, probs, average="macro")
    )
    assert m["macro"]["f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert [m["per_class"][n]["support"] for n in NAMES] == [14, 10, 8]


def _one_hot_probs(pred: list[int]) -> np.ndarray:
    probs = np.full((len(pred), 3), 0.1)
    probs[np.arange(len(pred)), pred] = 0.8
    return probs


def test_specificity_and_npv_match_hand_counts() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    pred = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
    m = clinical_metrics(y, _one_hot_probs(pred), NAMES)

    # Confusion matrix by hand: rows true, columns predicted.
    assert m["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    # normal: TP 2, FN 2, FP 1, TN 5; benign: TP 2, FN 1, FP 2, TN 5; malignant: 2, 1, 1, 6.
    hand = {
        "normal": {"specificity": 5 / 6, "npv": 5 / 7, "sensitivity": 2 / 4, "ppv": 2 / 3},
        "benign": {"specificity": 5 / 7, "npv": 5 / 6, "sensitivity": 2 / 3, "ppv": 2 / 4},
        "malignant": {"specificity": 6 / 7, "npv": 6 / 7, "sensitivity": 2 / 3, "ppv": 2 / 3},
    }
    for name, values in hand.items():
        for metric, value in values.items():
            assert m["per_class"][name][metric] == pytest.approx(value), (name, metric)
    assert m["macro"]["specificity"] == pytest.approx((5 / 6 + 5 / 7 + 6 / 7) / 3)
    assert m["macro"]["npv"] == pytest.approx((5 / 7 + 5 / 6 + 6 / 7) / 3)


def test_undefined_metrics_are_none_not_zero() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])  # no malignant case
    pred = [0, 0, 1, 1, 1, 0]  # malignant never predicted
    m = clinical_metrics(y, _one_hot_probs(pred), NAMES)

    malignant = m["per_class"]["malignant"]
    assert malignant["sensitivity"] is None  # no positives
    assert malignant["ppv"] is None  # nothing predicted positive
    assert malignant["roc_auc"] is None
    assert malignant["pr_auc"] is None
    assert malignant["specificity"] == 1.0
    assert m["overall"]["balanced_accuracy"] is None
    assert m["macro"]["roc_auc"] is None
    assert m["overall"]["accuracy"] == pytest.approx(4 / 6)
    json.dumps(m)


def test_weights_equal_repeating_cases(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    probs = np.round(probs, 1)  # tied scores exercise the threshold grouping
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, size=(5, len(y))).astype(float)
    batch = metric_samples(y, probs, NAMES, weights)
    for row, w in enumerate(weights.astype(int)):
        repeated = np.repeat(np.arange(len(y)), w)
        single = metric_samples(y[repeated], probs[repeated], NAMES, np.ones((1, w.sum())))
        for path, values in single.items():
            np.testing.assert_allclose(batch[path][row], values[0], rtol=1e-12, err_msg=path)


def test_weighted_ranking_metrics_match_sklearn_sample_weight(
    cases: tuple[np.ndarray, np.ndarray],
) -> None:
    y, probs = cases
    probs = np.round(probs, 1)
    w = np.random.default_rng(1).integers(0, 3, size=len(y)).astype(float)
    batch = metric_samples(y, probs, NAMES, w[None, :])
    for c, name in enumerate(NAMES):
        assert batch[("per_class", name, "roc_auc")][0] == pytest.approx(
            roc_auc_score(y == c, probs[:, c], sample_weight=w)
        )
        assert batch[("per_class", name, "pr_auc")][0] == pytest.approx(
            average_precision_score(y == c, probs[:, c], sample_weight=w)
        )


def test_rejects_inconsistent_inputs(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    with pytest.raises(ValueError, match="columns"):
        clinical_metrics(y, probs, NAMES[:2])
    with pytest.raises(ValueError, match="outside"):
        clinical_metrics(np.where(y == 2, 3, y), probs, NAMES)
    with pytest.raises(ValueError, match="unique"):
        clinical_metrics(y, probs, ["a", "a", "b"])
