"""Both baselines learn planted signals, save without pickle, reload to identical scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medsight.ehr.baselines import load_baselines, score_baselines, train_baselines
from medsight.ehr.baselines.boosting import BoostingBaseline
from medsight.ehr.baselines.logistic import LogisticBaseline
from medsight.errors import InputError

VOCAB = 30


def _held_out_auroc(samples, scores: np.ndarray) -> float:
    held_out = samples.split == "held_out"
    return float(roc_auc_score(samples.label[held_out], scores[held_out]))


@pytest.fixture(scope="module")
def last_value_run(last_value_cohort, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    return run, train_baselines(last_value_cohort, run, vocab_size=VOCAB, seed=0)


def test_both_learn_the_last_value_signal(last_value_cohort, last_value_run) -> None:
    _, scores = last_value_run
    assert set(scores) == {"logistic", "lightgbm"}
    for name, s in scores.items():
        assert s.shape == (len(last_value_cohort),) and s.dtype == np.float64
        assert np.all((s >= 0) & (s <= 1)), name
    aurocs = {name: _held_out_auroc(last_value_cohort, s) for name, s in scores.items()}
    print(f"\nlast-value signal, held-out AUROC: {aurocs}")
    assert aurocs["logistic"] > 0.8 and aurocs["lightgbm"] > 0.8


def test_only_lightgbm_sees_recent_events(recent_cohort, tmp_path) -> None:
    """Code 9 within the last 30 days decides; its all-history count and last value do not."""
    scores = train_baselines(recent_cohort, tmp_path, vocab_size=VOCAB, seed=0)
    aurocs = {name: _held_out_auroc(recent_cohort, s) for name, s in scores.items()}
    print(f"\nrecent-events signal, held-out AUROC: {aurocs}")
    assert aurocs["lightgbm"] > 0.8
    assert aurocs["lightgbm"] > aurocs["logistic"] + 0.1


def test_saved_files_are_json_and_lightgbm_text_no_pickle(last_value_run) -> None:
    run, _ = last_value_run
    folder = run / "baselines"
    assert sorted(p.name for p in folder.iterdir()) == [
        "features.json",
        "lightgbm.txt",
        "logistic.json",
    ]
    for path in run.rglob("*"):
        if path.is_file():
            head = path.read_bytes()[:2]
            assert head[:1] != b"\x80", f"{path} starts like a pickle"
    logistic = json.loads((folder / "logistic.json").read_text())
    spec = json.loads((folder / "features.json").read_text())
    assert len(logistic["coefficients"]) == len(spec["logistic"]["feature_names"])
    assert logistic["feature_names"] == spec["logistic"]["feature_names"]
    assert spec["lightgbm"]["windows_days"] == [30, 365, None]
    assert (folder / "lightgbm.txt").read_text().startswith("tree\n")


def test_reloaded_baselines_score_identically(last_value_cohort, last_value_run) -> None:
    run, scores = last_value_run
    again = score_baselines(run, last_value_cohort)
    for name in scores:
        np.testing.assert_array_equal(again[name], scores[name])
    # Scoring a subset (other data) gives those samples' scores.
    subset = np.array([4, 9, 2, 400])
    part = load_baselines(run).score(last_value_cohort.subset(subset))
    for name in scores:
        np.testing.assert_array_equal(part[name], scores[name][subset])


def test_same_seed_same_scores(last_value_cohort, last_value_run, tmp_path) -> None:
    run, scores = last_value_run
    again = train_baselines(last_value_cohort, tmp_path, vocab_size=VOCAB, seed=0)
    for name in scores:
        np.testing.assert_array_equal(again[name], scores[name])
    assert (tmp_path / "baselines" / "lightgbm.txt").read_text() == (
        run / "baselines" / "lightgbm.txt"
    ).read_text()


def test_samples_without_events_are_scored(last_value_cohort, last_value_run, samples_from):
    run, scores = last_value_run
    empty = last_value_cohort.lengths() == 0
    assert empty.any()
    for s in scores.values():
        assert np.isfinite(s[empty]).all()
    alone = score_baselines(run, samples_from([[], []], [0, 0], ["held_out"] * 2))
    for name, s in alone.items():
        assert s.shape == (2,) and np.isfinite(s).all(), name


def test_unknown_labels_are_scored_not_fitted(last_value_cohort, tmp_path) -> None:
    samples = last_value_cohort.subset(np.arange(len(last_value_cohort)))
    samples.label[::7] = -1
    scores = train_baselines(samples, tmp_path, vocab_size=VOCAB)
    assert all(s.shape == (len(samples),) for s in scores.values())


def test_one_outcome_in_train_is_refused(samples_from, tmp_path) -> None:
    samples = samples_from([[(5, 1.0, 3.0)]] * 4, [0, 0, 0, 1], ["train"] * 3 + ["tuning"])
    with pytest.raises(InputError, match="train split"):
        train_baselines(samples, tmp_path, vocab_size=VOCAB)
    assert not (tmp_path / "baselines").exists()


def test_missing_or_broken_baselines_say_which_file(last_value_run, tmp_path) -> None:
    with pytest.raises(InputError, match="logistic.json: missing; run `medsight train"):
        load_baselines(tmp_path)
    run, _ = last_value_run
    broken = tmp_path / "broken"
    (broken / "baselines").mkdir(parents=True)
    for name in ("logistic.json", "features.json"):
        (broken / "baselines" / name).write_text((run / "baselines" / name).read_text())
    (broken / "baselines" / "lightgbm.txt").write_text("not a model\n")
    with pytest.raises(InputError, match="lightgbm.txt: not a usable LightGBM model"):
        load_baselines(broken)


def test_models_without_a_usable_tuning_split_use_defaults() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    logistic = LogisticBaseline().fit(x, y, x[:10], np.zeros(10))
    assert logistic.C_ == 1.0 and "defaults" in logistic.selection_
    boosting = BoostingBaseline(fixed_rounds=30).fit(x, y)
    assert boosting.best_iteration_ == 30 and "fixed" in boosting.selection_
    assert roc_auc_score(y, boosting.predict_risk(x)) > 0.8


def test_logistic_tuning_picks_from_the_grid() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = (x[:, 0] - x[:, 1] + rng.normal(size=400) > 0).astype(int)
    model = LogisticBaseline(Cs=(0.01, 1.0)).fit(x[:300], y[:300], x[300:], y[300:])
    assert len(model.tuning_aurocs_) == 4
    assert model.tuning_auroc_ == max(model.tuning_aurocs_.values())
    assert model.C_ in (0.01, 1.0) and model.class_weight_ in (None, "balanced")
