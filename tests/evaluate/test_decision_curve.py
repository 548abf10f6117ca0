import json

import numpy as np
import pytest

from medsight.evaluate.classification.decision_curve import decision_curve, net_benefit
from medsight.evaluate.report.decision_curve_figure import decision_curve_figure
from medsight.evaluate.report.risk_reliability_figure import risk_reliability_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_net_benefit_of_a_hand_counted_case() -> None:
    # 10 cases, 3 events. At t = 0.25 the score acts on cases with risk >= 0.25:
    # events 0, 1 (TP = 2) and non-events 3, 4 (FP = 2); odds 0.25 / 0.75 = 1/3.
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    risk = np.array([0.9, 0.3, 0.1, 0.5, 0.25, 0.2, 0.1, 0.05, 0.05, 0.0])
    model, treat_all = net_benefit(y, risk, [0.25])
    assert model[0, 0] == pytest.approx(2 / 10 - 2 / 10 * (1 / 3))
    assert treat_all[0, 0] == pytest.approx(3 / 10 - 7 / 10 * (1 / 3))
    curve = decision_curve(y, risk, [0.25, 0.5])
    # At 0.5: TP = 1 (0.9), FP = 1 (0.5), odds 1: net benefit 0, not above treat none.
    assert curve["net_benefit"] == pytest.approx([model[0, 0], 0.0])
    assert curve["treat_none"] == [0.0, 0.0]
    assert curve["useful"] == [True, False]
    assert curve["prevalence"] == pytest.approx(0.3)
    json.dumps(curve)


def test_a_perfect_score_gains_the_prevalence_and_treat_all_crosses_zero_there() -> None:
    y = np.array([1] * 20 + [0] * 80)
    risk = y.astype(float)
    curve = decision_curve(y, risk, [0.1, 0.2, 0.3])
    assert curve["net_benefit"] == pytest.approx([0.2, 0.2, 0.2])
    # treat all is worth nothing at a threshold equal to the prevalence
    assert curve["treat_all"][1] == pytest.approx(0.0, abs=1e-12)


def test_weights_are_bootstrap_multiplicities() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    risk = rng.random(40)
    w = rng.integers(0, 3, size=(1, 40)).astype(float)
    cases = np.repeat(np.arange(40), w[0].astype(int))
    weighted, _ = net_benefit(y, risk, [0.3, 0.6], w)
    repeated, _ = net_benefit(y[cases], risk[cases], [0.3, 0.6])
    np.testing.assert_allclose(weighted, repeated)


def test_intervals_resample_patients_and_bracket_the_point() -> None:
    rng = np.random.default_rng(1)
    n = 300
    y = (rng.random(n) < 0.2).astype(int)
    risk = np.clip(0.2 + 0.3 * (y - 0.2) + rng.normal(0, 0.1, n), 0, 1)
    ids = [f"S{i // 2}" for i in range(n)]  # two prediction times per subject
    curve = decision_curve(y, risk, [0.1, 0.2, 0.3], patient_ids=ids, n_boot=200)
    assert curve["ci"] is not None
    for point, low, high in zip(
        curve["net_benefit"], curve["ci"]["low"], curve["ci"]["high"], strict=True
    ):
        assert low <= point <= high
        assert high - low > 0
    with pytest.raises(ValueError, match="patient ID"):
        decision_curve(y, risk, [0.1], n_boot=10)


@pytest.mark.parametrize(
    ("y", "risk", "thresholds", "message"),
    [
        ([0, 1], [0.2, 1.2], [0.1], "probabilities"),
        ([0, 2], [0.2, 0.5], [0.1], "0 or 1"),
        ([0, 1], [0.2, 0.5], [0.0], "strictly between"),
        ([0, 1], [0.2], [0.1], "one risk per outcome"),
    ],
)
def test_bad_inputs_are_refused(y: list, risk: list, thresholds: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decision_curve(np.array(y), np.array(risk), thresholds)


def test_figures_are_pngs() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(int)
    risk = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, 200), 0, 1)
    ids = list(range(200))
    curves = {
        "model": decision_curve(y, risk, patient_ids=ids, n_boot=50),
        "noisy": decision_curve(y, np.clip(risk + rng.normal(0, 0.2, 200), 0, 1)),
    }
    assert decision_curve_figure(curves, max_threshold=0.6).startswith(PNG_SIGNATURE)
    other = decision_curve(y, risk, [0.1, 0.2])
    with pytest.raises(ValueError, match="other thresholds"):
        decision_curve_figure({**curves, "other": other})
    png = risk_reliability_figure(y, {"as trained": risk, "calibrated": np.clip(risk * 0.9, 0, 1)})
    assert png.startswith(PNG_SIGNATURE)
