import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medsight.evaluate.classification.classification_metrics import (
    classification_metrics,
    macro_auc,
)

NAMES = ["normal", "benign", "malignant"]


@pytest.fixture
def cases() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 1, 2, 2, 0])
    logits = rng.normal(size=(len(y), 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_matches_sklearn(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    pred = probs.argmax(axis=1)
    m = classification_metrics(y, probs, NAMES)

    assert m["n_cases"] == len(y)
    assert m["class_names"] == NAMES
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    precision = precision_score(y, pred, average=None, zero_division=0)
    recall = recall_score(y, pred, average=None, zero_division=0)
    f1 = f1_score(y, pred, average=None, zero_division=0)
    for c, name in enumerate(NAMES):
        row = m["per_class"][name]
        assert row["precision"] == pytest.approx(precision[c])
        assert row["recall"] == pytest.approx(recall[c])
        assert row["f1"] == pytest.approx(f1[c])
        assert row["auc"] == pytest.approx(roc_auc_score(y == c, probs[:, c]))
        assert row["support"] == int((y == c).sum())


def test_is_json_serialisable_with_plain_types(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    m = classification_metrics(y, probs.astype(np.float32), NAMES)
    assert json.loads(json.dumps(m)) == m
    assert type(m["accuracy"]) is float and type(m["n_cases"]) is int
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    m = classification_metrics(y, np.eye(3)[y], NAMES)
    assert m["accuracy"] == 1.0
    assert m["macro_auc"] == 1.0
    assert all(row["f1"] == 1.0 and row["auc"] == 1.0 for row in m["per_class"].values())
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_absent_class_gives_undefined_auc() -> None:
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    m = classification_metrics(y, probs, NAMES)
    assert m["macro_auc"] is None
    assert m["per_class"]["malignant"]["auc"] is None
    assert m["per_class"]["malignant"]["support"] == 0
    assert m["per_class"]["malignant"]["precision"] == 0.0  # predicted once, wrongly


def test_two_classes() -> None:
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, np.stack([1 - p1, p1], axis=1), ["negative", "positive"])
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, p1))


@pytest.mark.parametrize(
    ("y", "probs", "match"),
    [
        (np.zeros(4, int), np.full((5, 3), 1 / 3), "4 cases but probs has 5 rows"),
        (np.zeros(4, int), np.full((4, 2), 0.5), "2 columns but there are 3 classes"),
        (np.zeros((4, 1), int), np.full((4, 3), 1 / 3), "1-D"),
        (np.zeros(4, int), np.full(4, 1 / 3), "2-D"),
        (np.array([0, 1, 3, 0]), np.full((4, 3), 1 / 3), "outside 0..2"),
        (np.zeros(0, int), np.zeros((0, 3)), "no cases"),
    ],
)
def test_bad_inputs_raise(y: np.ndarray, probs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, probs, NAMES)


def test_macro_auc_is_sklearns_one_vs_rest_macro(cases: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = cases
    expected = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    # exactly: the training loop stops on this number, so it must not drift
    assert macro_auc(y, probs) == expected
    assert macro_auc(y, probs.astype(np.float32)) == expected


def test_macro_auc_of_two_classes_is_the_positive_columns_auc() -> None:
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 10)
    p1 = np.clip(0.5 * y + rng.uniform(0, 0.6, len(y)), 0, 1)
    # a first column unrelated to the second shows which column is scored
    scores = np.stack([rng.uniform(size=len(y)), p1], axis=1)
    assert macro_auc(y, scores) == roc_auc_score(y, p1)


def test_macro_auc_with_a_class_missing_is_undefined() -> None:
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    assert macro_auc(y, probs) is None
    assert macro_auc(np.zeros(4, int), probs[:, :2] / probs[:, :2].sum(1, keepdims=True)) is None
