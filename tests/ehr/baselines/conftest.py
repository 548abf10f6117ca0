"""Hand-built `EncodedSamples` for the baseline tests: tiny exact cases and planted signals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from medsight.ehr.data.encoded_samples import EncodedSamples

#: (code, raw value or NaN, hours before the prediction time), oldest first
Event = tuple[int, float, float]


def make_samples(
    histories: Sequence[Sequence[Event]],
    labels: Sequence[int],
    splits: Sequence[str],
    sex: Sequence[int] | None = None,
    age_years: Sequence[float] | None = None,
) -> EncodedSamples:
    """EncodedSamples from per-sample event lists (value columns the baselines do not read: 0)."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    flat = [e for h in histories for e in h]
    code = np.array([e[0] for e in flat], dtype=np.int32)
    raw = np.array([e[1] for e in flat], dtype=np.float32)
    hours = np.array([e[2] for e in flat], dtype=np.float32)
    return from_arrays(code, raw, hours, lengths, labels, splits, sex, age_years)


def from_arrays(
    code: np.ndarray,
    raw_value: np.ndarray,
    hours_before: np.ndarray,
    lengths: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    splits: Sequence[str] | np.ndarray,
    sex: Sequence[int] | np.ndarray | None = None,
    age_years: Sequence[float] | np.ndarray | None = None,
) -> EncodedSamples:
    """EncodedSamples from flat event arrays and per-sample lengths."""
    n = lengths.shape[0]
    e = code.shape[0]
    return EncodedSamples(
        subject_id=np.arange(n, dtype=np.int64),
        prediction_time=np.full(n, np.datetime64("2020-01-01T00:00:00", "us")),
        label=np.asarray(labels, dtype=np.int8),
        split=np.asarray(splits, dtype="U8"),
        sex=np.asarray(sex if sex is not None else np.ones(n), dtype=np.int8),
        age_years=np.asarray(age_years if age_years is not None else np.full(n, 60.0), np.float32),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        code=code.astype(np.int32),
        value_bin=np.zeros(e, dtype=np.int16),
        value=np.zeros(e, dtype=np.float32),
        raw_value=raw_value.astype(np.float32),
        hours_before=hours_before.astype(np.float32),
        delta_hours=np.zeros(e, dtype=np.float32),
    )


def _splits(n: int) -> np.ndarray:
    """60% train, 20% tuning, 20% held_out, interleaved."""
    return np.array(["train", "train", "train", "tuning", "held_out"] * (n // 5 + 1))[:n]


def planted_cohort(n: int, seed: int, signal: str) -> EncodedSamples:
    """Samples whose outcome follows one planted rule, plus noise codes and 5% label noise.

    ``signal="last"``: the newest value of code 5 (a lab measured a few times, patients'
    levels vary) decides the risk. ``signal="recent"``: three events of code 9 (an admission)
    fall within the last 30 days for at-risk patients and 2-24 months back for the others, so
    all-history counts and last values carry nothing and only the windows see it. Every 13th
    sample has no events at all.
    """
    rng = np.random.default_rng(seed)
    histories: list[list[Event]] = []
    labels = np.zeros(n, dtype=np.int8)
    for i in range(n):
        events: list[Event] = []
        empty = i % 13 == 12  # 13 is prime to the split pattern's 5: empties in every split
        if not empty:
            for _ in range(int(rng.integers(3, 15))):
                events.append((int(rng.integers(10, 30)), np.nan, float(rng.uniform(0, 20_000))))
            for _ in range(int(rng.integers(1, 4))):
                events.append((6, float(rng.normal(100, 15)), float(rng.uniform(0, 20_000))))
        if signal == "last":
            risk = False
            if not empty:
                level = rng.normal(0, 1)
                for _ in range(int(rng.integers(1, 5))):
                    events.append((5, float(level + rng.normal(0, 1)), rng.uniform(100, 20_000)))
                newest = float(level + rng.normal(0, 1))
                events.append((5, newest, float(rng.uniform(0, 50))))
                risk = newest > 0.5
        else:
            risk = bool(rng.random() < 0.4) and not empty
            if not empty:
                lo, hi = (0, 700) if risk else (1_500, 17_000)
                for _ in range(3):
                    events.append((9, np.nan, float(rng.uniform(lo, hi))))
        labels[i] = int(risk) ^ int(rng.random() < 0.05)
        events.sort(key=lambda e: -e[2])
        histories.append(events)
    sex = rng.integers(0, 3, size=n)
    age = rng.uniform(30, 90, size=n)
    return make_samples(histories, labels, _splits(n), sex=sex, age_years=age)


@pytest.fixture(scope="session")
def last_value_cohort() -> EncodedSamples:
    return planted_cohort(800, seed=1, signal="last")


@pytest.fixture(scope="session")
def recent_cohort() -> EncodedSamples:
    return planted_cohort(800, seed=2, signal="recent")


@pytest.fixture(scope="session")
def samples_from():
    """`make_samples`: EncodedSamples from per-sample event lists."""
    return make_samples


@pytest.fixture(scope="session")
def samples_from_arrays():
    """`from_arrays`: EncodedSamples from flat event arrays."""
    return from_arrays
