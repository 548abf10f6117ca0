"""Length-bucketed batches: every sample once, seeded, padded only to the batch's longest."""

from __future__ import annotations

import numpy as np
import torch

from medsight.ehr.data.batches import bucketed_order, collate, sorted_batches, training_batches
from medsight.ehr.data.encoded_samples import EncodedSamples


def _samples(lengths: list[int]) -> EncodedSamples:
    n, total = len(lengths), int(sum(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rng = np.random.default_rng(0)
    return EncodedSamples(
        subject_id=np.arange(n, dtype=np.int64),
        prediction_time=np.zeros(n, "datetime64[us]"),
        label=(np.arange(n) % 2).astype(np.int8),
        split=np.array(["train"] * n, "U8"),
        sex=np.ones(n, np.int8),
        age_years=np.full(n, 60.0, np.float32),
        offsets=offsets,
        code=rng.integers(2, 10, total).astype(np.int32),
        value_bin=np.zeros(total, np.int16),
        value=np.zeros(total, np.float32),
        raw_value=np.full(total, np.nan, np.float32),
        hours_before=np.ones(total, np.float32),
        delta_hours=np.zeros(total, np.float32),
    )


def test_every_sample_once_same_seed_same_batches() -> None:
    lengths = np.random.default_rng(1).integers(0, 200, 1000)
    a = bucketed_order(lengths, 32, torch.Generator().manual_seed(3))
    b = bucketed_order(lengths, 32, torch.Generator().manual_seed(3))
    c = bucketed_order(lengths, 32, torch.Generator().manual_seed(4))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_bucketing_pads_far_less_than_random_batches() -> None:
    lengths = np.random.default_rng(1).integers(1, 256, 4096)
    bucketed = bucketed_order(lengths, 32, torch.Generator().manual_seed(0))
    padded = sum(len(b) * lengths[b].max() for b in bucketed)
    rows = np.random.default_rng(0).permutation(4096).reshape(-1, 32)
    random_padded = sum(32 * lengths[b].max() for b in rows)
    assert padded < 0.65 * random_padded
    assert padded < 1.1 * lengths.sum()


def test_collate_pads_to_the_batch_longest_and_keeps_the_events() -> None:
    samples = _samples([3, 0, 5])
    batch = collate(samples, np.array([0, 1]))
    assert batch["code"].shape == (2, 3) and batch["mask"].sum().item() == 3
    assert batch["code"][1].eq(0).all() and batch["sex"].dtype == torch.int64
    assert batch["code"][0].tolist() == samples.code[0:3].tolist()
    empty = collate(samples, np.array([1]))
    assert empty["code"].shape == (1, 1) and not empty["mask"].any()


def test_training_and_inference_batches_cover_the_indices() -> None:
    samples = _samples(list(range(1, 50)))
    indices = np.arange(0, 49, 2)
    seen = []
    for x, y in training_batches(samples, indices, 8, torch.Generator().manual_seed(0)):
        assert x["code"].shape[0] == y.shape[0] and y.dtype == torch.float32
        seen += x["mask"].sum(1).tolist()
    assert sorted(seen) == sorted(samples.lengths()[indices].tolist())
    positions = np.concatenate([p for p, _ in sorted_batches(samples, indices, 8)])
    assert sorted(positions.tolist()) == list(range(len(indices)))
