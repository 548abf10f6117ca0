"""Batches of encoded samples as model inputs, bucketed by history length.

`collate` gathers samples into a dict of tensors padded only to the batch's longest history
(the tensor conventions are `medsight.ehr.models.embedding`'s). `bucketed_order` shuffles
samples with the loop's generator, then sorts them by length within chunks of
``chunk_batches`` batches, cuts batches and shuffles the batches: every batch holds samples
of similar length (little padding), and every epoch still sees a new mix. `sorted_batches`
is the deterministic order for inference (longest first), with the positions to put the
outputs back.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from medsight.ehr.data.encoded_samples import EncodedSamples

Inputs = dict[str, torch.Tensor]
#: batches per length-sorted chunk: larger means less padding but less mixing of lengths
CHUNK_BATCHES = 32


def collate(samples: EncodedSamples, indices: np.ndarray) -> Inputs:
    """The model inputs of the samples at ``indices``, padded to their longest history (>= 1)."""
    indices = np.asarray(indices, dtype=np.int64)
    starts = np.asarray(samples.offsets[indices], dtype=np.int64)
    lengths = np.asarray(samples.offsets[indices + 1], dtype=np.int64) - starts
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    positions = np.arange(width)
    mask = positions[None, :] < lengths[:, None]
    flat = np.where(mask, starts[:, None] + positions[None, :], 0)
    rows = flat[mask]

    def events(name: str, dtype: np.dtype) -> torch.Tensor:
        out = np.zeros(mask.shape, dtype)
        out[mask] = np.asarray(getattr(samples, name)[rows])
        return torch.from_numpy(out)

    return {
        "code": events("code", np.dtype(np.int64)),
        "value_bin": events("value_bin", np.dtype(np.int64)),
        "value": events("value", np.dtype(np.float32)),
        "hours_before": events("hours_before", np.dtype(np.float32)),
        "delta_hours": events("delta_hours", np.dtype(np.float32)),
        "mask": torch.from_numpy(mask),
        "age_years": torch.from_numpy(np.asarray(samples.age_years[indices], np.float32)),
        "sex": torch.from_numpy(np.asarray(samples.sex[indices], np.int64)),
    }


def bucketed_order(
    lengths: np.ndarray,
    batch_size: int,
    generator: torch.Generator,
    chunk_batches: int = CHUNK_BATCHES,
) -> list[np.ndarray]:
    """Batches of positions into ``lengths``: shuffled, length-sorted within chunks, shuffled.

    Every position appears in exactly one batch. Only ``generator`` is drawn from.
    """
    order = torch.randperm(len(lengths), generator=generator).numpy()
    chunk = batch_size * chunk_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).numpy()
    return [batches[i] for i in shuffle]


def training_batches(
    samples: EncodedSamples,
    indices: np.ndarray,
    batch_size: int,
    generator: torch.Generator,
) -> Iterator[tuple[Inputs, torch.Tensor]]:
    """One epoch of bucketed batches of ``samples[indices]`` with float 0/1 targets."""
    indices = np.asarray(indices, dtype=np.int64)
    lengths = np.asarray(samples.offsets[indices + 1] - samples.offsets[indices])
    for batch in bucketed_order(lengths, batch_size, generator):
        chosen = indices[batch]
        target = torch.from_numpy(np.asarray(samples.label[chosen], np.float32))
        yield collate(samples, chosen), target


def sorted_batches(
    samples: EncodedSamples, indices: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, Inputs]]:
    """Batches for inference, longest first: ``(positions into indices, inputs)``."""
    indices = np.asarray(indices, dtype=np.int64)
    lengths = np.asarray(samples.offsets[indices + 1] - samples.offsets[indices])
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        positions = order[start : start + batch_size]
        yield positions, collate(samples, indices[positions])
