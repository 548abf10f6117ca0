import json

import numpy as np
import pytest
from scipy.special import softmax

from medsight.evaluate.classification.calibration import (
    TemperatureScaler,
    calibration_report,
    expected_calibration_error,
    reliability_bins,
)
from medsight.evaluate.report.reliability_figure import reliability_figure

TRUE_TEMPERATURE = 2.5


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports z * 2.5, i.e. is over-confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, 4))
    cumulative = softmax(z, axis=1).cumsum(axis=1)
    y = (rng.random((n, 1)) > cumulative).sum(axis=1)
    return z * TRUE_TEMPERATURE, y


def test_ece_matches_a_hand_computed_value() -> None:
    # Ten cases at confidence 0.9 of which 6 are right, four at 0.6 all right.
    probs = np.array([[0.9, 0.1]] * 10 + [[0.4, 0.6]] * 4)
    y = np.array([0] * 6 + [1] * 4 + [1] * 4)
    expected = (10 / 14) * abs(0.6 - 0.9) + (4 / 14) * abs(1.0 - 0.6)
    assert expected_calibration_error(y, probs, n_bins=10) == pytest.approx(expected)
    bins = reliability_bins(y, probs, n_bins=10)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 4, 0, 0, 10, 0]
    assert bins[8]["accuracy"] == pytest.approx(0.6)
    assert bins[8]["confidence"] == pytest.approx(0.9)
    assert bins[0]["accuracy"] is None


def test_report_is_json_ready_and_counts_add_up() -> None:
    logits, y = overconfident(500, seed=0)
    report = calibration_report(y, softmax(logits, axis=1))
    assert json.loads(json.dumps(report)) == report
    assert len(report["bins"]) == 15
    assert sum(b["count"] for b in report["bins"]) == 500
    for b in report["bins"]:
        if b["count"]:
            assert b["lower"] < b["confidence"] <= b["upper"]


@pytest.mark.parametrize("inputs", ["logits", "probs"])
def test_temperature_scaling_recovers_the_temperature_and_lowers_ece(inputs: str) -> None:
    logits_val, y_val = overconfident(4000, seed=1)
    logits_test, y_test = overconfident(4000, seed=2)
    to_input = (lambda z: softmax(z, axis=1)) if inputs == "probs" else (lambda z: z)
    scaler = TemperatureScaler(inputs="probs" if inputs == "probs" else "logits")
    scaler.fit(to_input(logits_val), y_val)
    assert scaler.temperature_ == pytest.approx(TRUE_TEMPERATURE, rel=0.1)
    assert scaler.nll_after_ < scaler.nll_before_

    before = softmax(logits_test, axis=1)
    after = scaler.transform(to_input(logits_test))
    np.testing.assert_allclose(after.sum(axis=1), 1.0)
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    ece_before = expected_calibration_error(y_test, before)
    ece_after = expected_calibration_error(y_test, after)
    assert ece_after < 0.5 * ece_before


def test_log_probabilities_work_as_logits() -> None:
    logits, y = overconfident(1000, seed=3)
    from_logits = TemperatureScaler().fit(logits, y)
    from_log_probs = TemperatureScaler().fit(np.log(softmax(logits, axis=1)), y)
    assert from_log_probs.temperature_ == pytest.approx(from_logits.temperature_, rel=1e-4)


def test_transform_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TemperatureScaler().transform(np.zeros((2, 3)))


def test_reliability_figure_is_a_png() -> None:
    logits, y = overconfident(300, seed=4)
    png = reliability_figure(y, softmax(logits, axis=1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000


def test_sampling_noise_floor_shrinks_with_cases_and_covers_calibrated_models() -> None:
    from medsight.evaluate.classification.calibration import ece_sampling_noise

    rng = np.random.default_rng(3)
    floors = {}
    for n in (60, 600):
        confidence = rng.uniform(0.8, 1.0, n)
        probs = np.stack([confidence, 1 - confidence], axis=1)
        floors[n] = ece_sampling_noise(probs)
        # a model calibrated by construction: its observed ECE falls under the floor's p95
        # in about 95% of label draws
        inside = 0
        for _ in range(200):
            y = np.where(rng.random(n) < confidence, 0, 1)
            inside += expected_calibration_error(y, probs) <= floors[n]["p95"]
        assert inside >= 180
    assert floors[60]["mean"] > 2 * floors[600]["mean"]
    assert 0.03 < floors[60]["mean"] < 0.08  # the floor the report states for 60 cases
    same = np.stack([np.full(60, 0.9), np.full(60, 0.1)], axis=1)
    assert ece_sampling_noise(same) == ece_sampling_noise(same)  # seeded: reproducible


def test_bias_corrected_scaling_fixes_a_neglected_class_that_a_temperature_cannot() -> None:
    from medsight.evaluate.classification.bias_corrected_scaling import BiasCorrectedScaler

    # a calibrated model's logits, then class 1 pushed down by 2.5 nats (the model gives it
    # too little probability, as the demo's under-trained CT model does with benign nodules)
    shift = np.array([0.0, -2.5, 0.0, 0.0])
    logits_val, y_val = overconfident(4000, seed=4)
    logits_test, y_test = overconfident(4000, seed=5)
    val = softmax(logits_val / TRUE_TEMPERATURE + shift, axis=1)
    test = softmax(logits_test / TRUE_TEMPERATURE + shift, axis=1)
    bcts = BiasCorrectedScaler(inputs="probs").fit(val, y_val)
    assert bcts.temperature_ == pytest.approx(1.0, abs=0.1)
    assert bcts.bias_[0] == 0.0
    assert bcts.bias_[1] == pytest.approx(2.5, abs=0.2)
    assert np.abs(bcts.bias_[2:]).max() < 0.2
    assert bcts.nll_after_ < bcts.nll_before_
    ts = TemperatureScaler(inputs="probs").fit(val, y_val)
    ece_ts = expected_calibration_error(y_test, ts.transform(test))
    ece_bcts = expected_calibration_error(y_test, bcts.transform(test))
    assert ece_bcts < 0.03 and ece_ts > 0.05
    with pytest.raises(ValueError, match="classes"):
        bcts.transform(test[:, :3])
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasCorrectedScaler().transform(test)
