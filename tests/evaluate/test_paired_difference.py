import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medsight.evaluate.bootstrap import patient_resample_weights
from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.evaluate.classification.paired_difference import paired_auroc_difference

N_SUBJECTS = 150


def simulate(rng: np.random.Generator, n_subjects: int = N_SUBJECTS):
    """Two prediction times per subject; A and B share the subject's latent risk (correlated)."""
    latent = rng.normal(size=n_subjects)
    subject = np.repeat(np.arange(n_subjects), 2)
    frailty = latent[subject] + rng.normal(0, 0.5, subject.size)
    y = (frailty + rng.normal(0, 1.0, subject.size) > 1.0).astype(int)
    shared_noise = rng.normal(0, 0.8, subject.size)
    a = frailty + shared_noise + rng.normal(0, 0.3, subject.size)
    b = frailty + shared_noise + rng.normal(0, 0.9, subject.size)
    return y, a, b, subject


def unpaired_width(y, a, b, subject, seed: int) -> float:
    """Each AUROC on its own, independent resamples (as two separate CIs treat them)."""
    w_a = next(patient_resample_weights(subject, 300, seed))
    w_b = next(patient_resample_weights(subject, 300, seed + 10_000))
    diff = ranking_metrics(y == 1, a, w_a)[0] - ranking_metrics(y == 1, b, w_b)[0]
    low, high = np.quantile(diff, [0.025, 0.975])
    return float(high - low)


def true_difference() -> float:
    y, a, b, _ = simulate(np.random.default_rng(12345), n_subjects=50_000)
    return float(roc_auc_score(y, a) - roc_auc_score(y, b))


def test_point_estimates_match_scikit_learn() -> None:
    y, a, b, subject = simulate(np.random.default_rng(0))
    out = paired_auroc_difference(y, a, b, subject, n_boot=100)
    assert out["auroc_a"]["point"] == pytest.approx(roc_auc_score(y, a))
    assert out["auroc_b"]["point"] == pytest.approx(roc_auc_score(y, b))
    assert out["difference"]["point"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert out["n_patients"] == N_SUBJECTS
    assert out["n_cases"] == 2 * N_SUBJECTS
    json.dumps(out)


def test_paired_interval_covers_the_true_difference_and_is_narrower_than_unpaired() -> None:
    truth = true_difference()
    assert truth > 0.02  # A is better by construction
    covered, paired_widths, unpaired_widths = 0, [], []
    repeats = 40
    for rep in range(repeats):
        y, a, b, subject = simulate(np.random.default_rng(rep))
        out = paired_auroc_difference(y, a, b, subject, n_boot=300, seed=rep)
        low, high = out["difference"]["low"], out["difference"]["high"]
        covered += low <= truth <= high
        paired_widths.append(high - low)
        unpaired_widths.append(unpaired_width(y, a, b, subject, seed=rep))
    # nominal 95%; 40 repeats: allow sampling error (P(<= 33 of 40) at 0.95 is ~ 0.4%)
    assert covered >= 34
    assert np.median(paired_widths) < 0.8 * np.median(unpaired_widths)


def test_resampling_is_clustered_by_subject() -> None:
    # Duplicating every case (as if each subject had two identical prediction times) must
    # not narrow the interval when the duplicates share their subject.
    y, a, b, subject = simulate(np.random.default_rng(3), n_subjects=100)
    once = paired_auroc_difference(y, a, b, subject, n_boot=400)
    twice = paired_auroc_difference(
        np.r_[y, y], np.r_[a, a], np.r_[b, b], np.r_[subject, subject], n_boot=400
    )
    as_cases = paired_auroc_difference(
        np.r_[y, y], np.r_[a, a], np.r_[b, b], np.arange(2 * y.size), n_boot=400
    )
    width = {
        k: v["difference"]["high"] - v["difference"]["low"]
        for k, v in {"once": once, "twice": twice, "cases": as_cases}.items()
    }
    assert width["twice"] == pytest.approx(width["once"], rel=0.25)
    assert width["cases"] < 0.85 * width["twice"]


def test_a_one_class_sample_has_no_difference() -> None:
    out = paired_auroc_difference([0, 0, 0], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [1, 2, 3], n_boot=20)
    assert out["difference"]["point"] is None
    assert out["difference"]["low"] is None
    with pytest.raises(ValueError, match="one score"):
        paired_auroc_difference([0, 1], [0.1, 0.2], [0.3], [1, 2])
