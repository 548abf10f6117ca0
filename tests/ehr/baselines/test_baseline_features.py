"""The baselines' features equal hand-computed values; window edges; chunking; speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medsight.ehr.baselines import code_events
from medsight.ehr.baselines.code_events import top_codes
from medsight.ehr.baselines.last_values import LastValueFeatures
from medsight.ehr.baselines.window_aggregates import WindowAggregateFeatures

NAN = float("nan")


@pytest.fixture
def tiny(samples_from):
    """Three samples, vocabulary of 10: code 5 a lab, code 6 without values, 1 unknown."""
    histories = [
        [
            (5, 1.0, 721.0),  # just outside 30 days
            (5, 2.0, 720.0),  # exactly 30 days before: inside
            (6, NAN, 500.0),
            (5, 4.0, 10.0),
            (6, NAN, 5.0),
            (1, NAN, 2.0),  # unknown code: counted in total_events only
        ],
        [],  # no events at all
        [(6, NAN, 9000.0), (5, 3.0, 9000.0)],  # 375 days: outside the 1-year window
    ]
    return samples_from(
        histories, labels=[1, 0, 0], splits=["train"] * 3, sex=[1, 0, 2], age_years=[50, NAN, 70]
    )


def test_top_codes_by_samples_present_ties_to_lower_index(tiny) -> None:
    # 5 and 6 are both in two samples (5 has more events, which does not count); 1 is unknown.
    assert top_codes(tiny, vocab_size=10, k=5).tolist() == [5, 6]
    assert top_codes(tiny, vocab_size=10, k=1).tolist() == [5]
    # A code past the vocabulary is not a real code.
    assert top_codes(tiny, vocab_size=6, k=5).tolist() == [5]


def test_last_values_match_hand_computed(tiny) -> None:
    features = LastValueFeatures(top_k=10).fit(tiny, vocab_size=10)
    assert features.feature_names_ == [
        "age_years",
        "age_missing",
        "sex_female",
        "sex_male",
        "count_log1p code_5",
        "count_log1p code_6",
        "last code_5",
        "last_missing code_5",
    ]
    x = features.transform(tiny)
    # Train last values of code 5 are 4 and 3: clipped to their 0.5-99.5 percentiles, then
    # their mean fills the sample without one.
    low, high = np.percentile([4.0, 3.0], [0.5, 99.5])
    fill = (np.clip(4.0, low, high) + np.clip(3.0, low, high)) / 2
    expected = np.array(
        [
            [50, 0, 1, 0, np.log1p(3), np.log1p(2), np.clip(4.0, low, high), 0],
            [60, 1, 0, 0, 0, 0, fill, 1],  # age: train mean of 50 and 70
            [70, 0, 0, 1, np.log1p(1), np.log1p(1), np.clip(3.0, low, high), 0],
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert x.dtype == np.float32


def test_window_aggregates_match_hand_computed(tiny) -> None:
    features = WindowAggregateFeatures(top_k=10).fit(tiny, vocab_size=10)
    names = features.feature_names_
    x = features.transform(tiny)
    assert x.shape == (3, len(names)) == (3, 4 + 3 * (2 + 4))
    got = [dict(zip(names, row.tolist(), strict=True)) for row in x]
    s0, s1, s2 = got
    assert (s0["age_years"], s0["sex"], s0["total_events"]) == (50, 1, 6)
    assert s0["days_since_last_event"] == pytest.approx(2 / 24)
    # 30 days = 720 h, closed: the event at 720 h is in, the one at 721 h is out.
    assert s0["count 30d code_5"] == 2
    assert (s0["last 30d code_5"], s0["mean 30d code_5"]) == (4.0, 3.0)
    assert (s0["min 30d code_5"], s0["max 30d code_5"]) == (2.0, 4.0)
    assert s0["count 30d code_6"] == 2
    assert s0["count 365d code_5"] == s0["count all code_5"] == 3
    assert s0["mean all code_5"] == pytest.approx(7 / 3)
    assert (s0["min all code_5"], s0["last all code_5"]) == (1.0, 4.0)
    # No events: counts 0, statistics and days-since missing.
    assert s1["total_events"] == 0 and np.isnan(s1["days_since_last_event"])
    assert np.isnan(s1["age_years"]) and s1["sex"] == 0
    assert all(s1[f"count {w} code_{c}"] == 0 for w in ("30d", "365d", "all") for c in (5, 6))
    assert all(np.isnan(s1[f"{stat} all code_5"]) for stat in ("last", "mean", "min", "max"))
    # 375 days back: outside the 1-year window, inside all history.
    assert s2["count 365d code_5"] == 0 and np.isnan(s2["last 365d code_5"])
    assert s2["count all code_5"] == 1 and s2["last all code_5"] == 3.0
    assert s2["days_since_last_event"] == pytest.approx(375.0)
    # A code without values has no value statistics.
    assert not any(n.startswith(("last", "mean")) and n.endswith("code_6") for n in names)


def test_code_names_name_the_features(tiny) -> None:
    names = ["PAD", "UNK", "a", "b", "c", "LOINC//4548-4", "ICD10CM//E11.9", "x", "y", "z"]
    features = WindowAggregateFeatures(top_k=10).fit(tiny, vocab_size=10, code_names=names)
    assert "last 30d LOINC//4548-4" in features.feature_names_
    assert "count all ICD10CM//E11.9" in features.feature_names_


def test_chunked_features_equal_unchunked(last_value_cohort, monkeypatch) -> None:
    samples = last_value_cohort
    windows = WindowAggregateFeatures(top_k=20).fit(samples, vocab_size=30)
    last = LastValueFeatures(top_k=20).fit(samples, vocab_size=30)
    whole_w, whole_l = windows.transform(samples), last.transform(samples)
    monkeypatch.setattr(code_events, "CHUNK_EVENTS", 7)  # a few samples per chunk
    np.testing.assert_array_equal(windows.transform(samples), whole_w)
    np.testing.assert_array_equal(last.transform(samples), whole_l)


def test_specs_round_trip_through_dicts(last_value_cohort) -> None:
    samples = last_value_cohort
    windows = WindowAggregateFeatures(top_k=20, windows_days=(7, None)).fit(samples, 30)
    last = LastValueFeatures(top_k=20).fit(samples, vocab_size=30)
    windows2 = WindowAggregateFeatures.from_dict(windows.to_dict())
    last2 = LastValueFeatures.from_dict(last.to_dict())
    np.testing.assert_array_equal(windows2.transform(samples), windows.transform(samples))
    np.testing.assert_array_equal(last2.transform(samples), last.transform(samples))
    assert windows2.feature_names_ == windows.feature_names_


def test_features_of_100k_samples_take_seconds(samples_from_arrays) -> None:
    """100k samples x 100 events (10M events), 128 codes: fit and transform both feature sets."""
    rng = np.random.default_rng(0)
    n, per_sample, vocab = 100_000, 100, 130
    e = n * per_sample
    code = rng.integers(2, vocab, size=e).astype(np.int32)
    raw = np.where(code < 40, rng.normal(size=e), np.nan).astype(np.float32)
    hours = np.tile(np.linspace(30_000, 0, per_sample), n)  # oldest first, 0-3.4 years
    samples = samples_from_arrays(
        code, raw, hours, np.full(n, per_sample), np.zeros(n), np.full(n, "train")
    )
    timings = {}
    start = time.perf_counter()
    last = LastValueFeatures(top_k=128).fit(samples, vocab)
    timings["last-values fit"] = time.perf_counter() - start
    start = time.perf_counter()
    x = last.transform(samples)
    timings["last-values transform"] = time.perf_counter() - start
    start = time.perf_counter()
    windows = WindowAggregateFeatures(top_k=128).fit(samples, vocab)
    timings["windows fit"] = time.perf_counter() - start
    start = time.perf_counter()
    w = windows.transform(samples)
    timings["windows transform"] = time.perf_counter() - start
    print(
        f"\n100k samples x 100 events: LR features {x.shape}, LightGBM features {w.shape}; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )
    assert x.shape == (n, 4 + 128 + 2 * 38) and w.shape == (n, 4 + 3 * (128 + 4 * 38))
    # Loose: a Python loop over events or samples would take minutes.
    assert sum(timings.values()) < 120
