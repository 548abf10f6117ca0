import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from medsight.evaluate.bootstrap import (
    bootstrap_ci,
    metrics_with_ci,
    patient_resample_weights,
)

NAMES = ["normal", "benign", "malignant"]


def synthetic(n_patients: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-3 cases per patient; a patient's cases share the label; moderately good scores."""
    rng = np.random.default_rng(seed)
    cases_per_patient = rng.integers(1, 4, size=n_patients)
    patient_label = rng.integers(0, 3, size=n_patients)
    patients = np.repeat(np.arange(n_patients), cases_per_patient)
    y = patient_label[patients]
    logits = rng.normal(size=(len(y), 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ids = np.array([f"P{p:04d}" for p in patients])
    return y, probs, ids


def accuracy(y: np.ndarray, probs: np.ndarray) -> float:
    return float(accuracy_score(y, probs.argmax(axis=1)))


def test_resamples_keep_each_patients_cases_together() -> None:
    ids = ["a", "a", "a", "b", "c", "c", "d", "e", "e", "e", "e"]
    weights = np.vstack(list(patient_resample_weights(ids, n_boot=300, seed=5)))
    assert weights.shape == (300, len(ids))
    first_case = {pid: ids.index(pid) for pid in ids}
    for case, pid in enumerate(ids):
        np.testing.assert_array_equal(weights[:, case], weights[:, first_case[pid]])
    # Five patients drawn per resample, each bringing all its cases.
    per_patient = weights[:, list(first_case.values())]
    np.testing.assert_array_equal(per_patient.sum(axis=1), 5)
    assert weights.max() > 1  # drawn with replacement


def test_resamples_do_not_depend_on_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"p{i // 2}" for i in range(40)]
    whole = np.vstack(list(patient_resample_weights(ids, n_boot=50, seed=1)))
    monkeypatch.setattr("medsight.evaluate.bootstrap.CELLS_PER_BLOCK", 7 * 40)
    blocks = list(patient_resample_weights(ids, n_boot=50, seed=1))
    assert len(blocks) > 1
    np.testing.assert_array_equal(np.vstack(blocks), whole)


def test_interval_is_wider_when_cases_share_a_patient() -> None:
    # 20 patients x 10 identical cases: the evidence is 20 patients, not 200 cases.
    rng = np.random.default_rng(0)
    patient_correct = rng.random(20) < 0.7
    y = np.repeat(np.zeros(20, dtype=int), 10)
    probs = np.repeat(np.where(patient_correct[:, None], [[0.8, 0.2]], [[0.2, 0.8]]), 10, axis=0)
    by_patient = bootstrap_ci(accuracy, y, probs, np.repeat(np.arange(20), 10), n_boot=400)
    by_case = bootstrap_ci(accuracy, y, probs, np.arange(200), n_boot=400)
    assert by_patient["point"] == by_case["point"] == pytest.approx(patient_correct.mean())
    width_patient = by_patient["high"] - by_patient["low"]
    width_case = by_case["high"] - by_case["low"]
    assert width_patient > 2 * width_case


def test_interval_contains_point_and_narrows_with_more_patients() -> None:
    small = metrics_with_ci(*_args(40), NAMES, n_boot=500, seed=0)
    large = metrics_with_ci(*_args(400), NAMES, n_boot=500, seed=0)
    for table in (small, large):
        for ci in (
            table["overall"]["accuracy"],
            table["overall"]["balanced_accuracy"],
            table["macro"]["roc_auc"],
            table["macro"]["f1"],
        ):
            assert ci["low"] <= ci["point"] <= ci["high"]
    for group, metric in [("overall", "accuracy"), ("macro", "roc_auc"), ("macro", "pr_auc")]:
        width_small = small[group][metric]["high"] - small[group][metric]["low"]
        width_large = large[group][metric]["high"] - large[group][metric]["low"]
        assert width_large < 0.6 * width_small, metric


def _args(n_patients: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return synthetic(n_patients, seed=n_patients)


def test_vectorised_table_matches_per_resample_sklearn() -> None:
    y, probs, ids = synthetic(30, seed=2)
    table = metrics_with_ci(y, probs, ids, NAMES, n_boot=200, seed=4)
    macro_auc = bootstrap_ci(
        lambda t, p: roc_auc_score(t, p, multi_class="ovr"), y, probs, ids, n_boot=200, seed=4
    )
    acc = bootstrap_ci(accuracy, y, probs, ids, n_boot=200, seed=4)
    assert table["macro"]["roc_auc"] == pytest.approx(macro_auc, rel=1e-9)
    assert table["overall"]["accuracy"] == pytest.approx(acc, rel=1e-9)


def test_undefined_resamples_are_skipped_and_counted() -> None:
    y, probs, ids = synthetic(40, seed=8)
    # One patient (3 cases) is the only malignant one: resamples without it are skipped.
    y = np.where(y == 2, 1, y)
    y[ids == ids[0]] = 2
    assert len(set(ids[y == 2])) == 1
    table = metrics_with_ci(y, probs, ids, NAMES, n_boot=300, seed=0)
    valid = table["macro"]["roc_auc"]["n_boot_valid"]
    assert 0 < valid < 300
    assert table["overall"]["accuracy"]["n_boot_valid"] == 300
    binary = bootstrap_ci(
        lambda t, p: roc_auc_score(t == 2, p[:, 2]), y, probs, ids, n_boot=300, seed=0
    )
    assert binary["n_boot_valid"] == table["per_class"]["malignant"]["roc_auc"]["n_boot_valid"]


def test_table_shape_is_json_ready() -> None:
    y, probs, ids = synthetic(25, seed=1)
    table = metrics_with_ci(y, probs, ids, NAMES, n_boot=100, seed=0)
    assert json.loads(json.dumps(table)) == table
    assert table["n_cases"] == len(y)
    assert table["n_patients"] == 25
    assert set(table["overall"]) == {"accuracy", "balanced_accuracy"}
    metrics = {"sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc", "pr_auc"}
    assert set(table["macro"]) == metrics
    assert set(table["per_class"]["benign"]) == metrics | {"support"}
    assert set(table["macro"]["f1"]) == {"point", "low", "high", "n_boot_valid"}
    assert sum(table["per_class"][n]["support"] for n in NAMES) == len(y)


def test_missing_patient_id_is_rejected() -> None:
    y, probs, ids = synthetic(10, seed=1)
    ids = ids.astype(object)
    ids[3] = ""
    with pytest.raises(ValueError, match="patient ID"):
        metrics_with_ci(y, probs, ids, NAMES, n_boot=10)
