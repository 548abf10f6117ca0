import json

import numpy as np
import pytest
from scipy.special import softmax

from medsight.evaluate.classification.conformal import ConformalClassifier, nonconformity_scores


def dirichlet_model(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from a Dirichlet; the label is drawn from a sharpened version of them."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([0.6, 0.6, 0.6, 0.6], size=n)
    truth = softmax(2.0 * np.log(probs + 1e-9), axis=1)
    y = (rng.random((n, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    return probs, np.minimum(y, 3)


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_empirical_coverage_is_near_the_target(score: str, alpha: float) -> None:
    p_val, y_val = dirichlet_model(5000, seed=0)
    p_test, y_test = dirichlet_model(5000, seed=1)
    model = ConformalClassifier(alpha=alpha, score="aps" if score == "aps" else "lac")
    report = model.fit(p_val, y_val).report(p_test, y_test)
    assert report["coverage"] == pytest.approx(1 - alpha, abs=0.03)
    assert 1.0 < report["mean_set_size"] < 4.0
    assert json.loads(json.dumps(report)) == report


def test_qhat_is_the_finite_sample_quantile() -> None:
    p_val, y_val = dirichlet_model(9, seed=2)
    model = ConformalClassifier(alpha=0.2).fit(p_val, y_val)
    # ceil((9 + 1) * 0.8) = 8: the 8th smallest of the nine true-class scores.
    scores = np.sort(1 - p_val[np.arange(9), y_val])
    assert model.qhat_ == scores[7]
    with pytest.raises(ValueError, match="too few"):
        ConformalClassifier(alpha=0.05).fit(p_val, y_val)


def test_sets_lists_and_report_agree() -> None:
    p_val, y_val = dirichlet_model(2000, seed=3)
    p_test, y_test = dirichlet_model(500, seed=4)
    model = ConformalClassifier(alpha=0.1).fit(p_val, y_val)
    sets = model.predict_sets(p_test)
    lists = model.predict_set_lists(p_test)
    assert sets.shape == (500, 4) and sets.dtype == bool
    assert lists == [list(np.flatnonzero(row)) for row in sets]
    report = model.report(p_test, y_test, class_names=["a", "b", "c", "d"])
    sizes = sets.sum(axis=1)
    assert report["referred_share"] == pytest.approx(np.mean(sizes != 1))
    assert report["mean_set_size"] == pytest.approx(sizes.mean())
    assert sum(report["set_size_counts"].values()) == 500
    assert set(report["per_class_coverage"]) == {"a", "b", "c", "d"}


def test_aps_scores_are_cumulative_probability_in_rank_order() -> None:
    probs = np.array([[0.5, 0.2, 0.3]])
    np.testing.assert_allclose(nonconformity_scores(probs, "aps"), [[0.5, 1.0, 0.8]])
    np.testing.assert_allclose(nonconformity_scores(probs, "lac"), [[0.5, 0.8, 0.7]])
