"""Sliding-window inference with Gaussian blending, written for CPU throughput.

The volume is covered by windows of the training patch size, placed as nnU-Net places them
(evenly spaced, first and last flush with the borders, neighbours overlapping by at least
``overlap``). Each window's softmax is weighted by a Gaussian centred on the window
(sigma = 1/8 of its size, as nnU-Net), so voxels near a window's border, which saw the
least context, count least; the blend is the weighted sum divided by the summed weights.

Why not MONAI's ``sliding_window_inference``: it is the reference this module is measured
against (``bench/segment_infer.py``). Here windows are gathered into batches sized to a
memory budget, run in channels_last_3d under ``inference_mode`` (bf16 autocast on request),
and mirror test-time augmentation is batched with them; the Gaussian map is computed once
per patch size.

Arrays are ``[z, y, x]`` (3D) or ``[y, x]`` (2D); outputs are per-class probabilities
``(classes, *spatial)`` float32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import nn

#: default activation memory allowed for one batch of windows
WINDOW_BATCH_BYTES = 1 << 30


@lru_cache(maxsize=8)
def gaussian_weights(patch: tuple[int, ...], sigma_scale: float = 0.125) -> torch.Tensor:
    """Gaussian importance map of ``patch`` (peak 1, no zeros so every voxel is covered)."""
    axes = []
    for n in patch:
        centre, sigma = (n - 1) / 2, max(n * sigma_scale, 1e-3)
        axes.append(np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2))
    weights = axes[0]
    for axis in axes[1:]:
        weights = np.multiply.outer(weights, axis)
    weights = weights / weights.max()
    weights = np.maximum(weights, weights[weights > 0].min())
    return torch.from_numpy(weights.astype(np.float32))


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of windows of ``patch`` along an axis of ``size`` (``size >= patch``)."""
    if size <= patch:
        return [0]
    step = patch * (1 - overlap)
    n = math.ceil((size - patch) / max(step, 1)) + 1
    spread = (size - patch) / (n - 1)
    return sorted({int(round(i * spread)) for i in range(n)})


def _mirror_sets(mirror_axes: Sequence[int]) -> list[tuple[int, ...]]:
    return [c for r in range(len(mirror_axes) + 1) for c in itertools.combinations(mirror_axes, r)]


def sliding_window_probabilities(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray | torch.Tensor,
    patch_size: Sequence[int],
    num_classes: int,
    overlap: float = 0.25,
    mirror_axes: Sequence[int] = (),
    background: float = 0.0,
    bf16: bool = False,
    channels_last: bool = True,
    batch_bytes: int = WINDOW_BATCH_BYTES,
    bytes_per_window: int | None = None,
) -> torch.Tensor:
    """Per-class probabilities of ``image`` (one channel, spatial axes only).

    Args:
        model: maps ``(N, 1, *patch)`` to logits ``(N, classes, *patch)``; a module is set
            to eval here (any other callable, e.g. an ONNX Runtime session, is called as is).
        image: the preprocessed array.
        patch_size: window size (the training patch); smaller images are padded with
            ``background`` and the padding cut off again.
        num_classes: output channels.
        overlap: least fraction of a window shared with its neighbour (0 to <1).
        mirror_axes: spatial axes (0 = z/first) to mirror for test-time augmentation; every
            combination is predicted and averaged (``(2,)``: left-right, 2 passes).
        background: value for padding.
        bf16: bf16 autocast (probabilities are accumulated in float32).
        channels_last: run in channels_last(_3d) memory format.
        batch_bytes: activation memory allowed for one batch of windows.
        bytes_per_window: activation bytes of one window (default: an estimate of 64 float32
            feature maps of the window's size).
    """
    module = model if isinstance(model, nn.Module) else None
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    x = (
        image.float()
        if isinstance(image, torch.Tensor)
        else torch.from_numpy(np.asarray(image, dtype=np.float32))
    )
    spatial = tuple(int(n) for n in x.shape)
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != len(spatial):
        raise ValueError(f"patch {patch} does not match image dims {spatial}")
    padded_shape = tuple(max(n, p) for n, p in zip(spatial, patch, strict=True))
    if padded_shape != spatial:
        canvas = torch.full(padded_shape, float(background))
        canvas[tuple(slice(0, n) for n in spatial)] = x
        x = canvas
    starts = [window_starts(n, p, overlap) for n, p in zip(padded_shape, patch, strict=True)]
    corners = list(itertools.product(*starts))
    weights = gaussian_weights(patch)
    total = torch.zeros((num_classes, *padded_shape))
    norm = torch.zeros(padded_shape)
    mirrors = _mirror_sets(tuple(mirror_axes))
    per_window = bytes_per_window or 64 * 4 * math.prod(patch)
    per_batch = max(1, batch_bytes // (per_window * len(mirrors)))
    memory_format = torch.channels_last_3d if len(patch) == 3 else torch.channels_last
    with torch.inference_mode():
        for first in range(0, len(corners), per_batch):
            chunk = corners[first : first + per_batch]
            regions = [
                tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True))
                for corner in chunk
            ]
            windows = torch.stack([x[r] for r in regions])[:, None]
            batch = (
                torch.cat([windows.flip([a + 2 for a in m]) if m else windows for m in mirrors])
                if len(mirrors) > 1
                else windows
            )
            if channels_last:
                batch = batch.contiguous(memory_format=memory_format)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(batch)
            # contiguous before the arithmetic: a channels_last softmax added into the
            # contiguous accumulators goes through slow strided kernels (most of the blend)
            probs = torch.softmax(logits.float(), dim=1).contiguous()
            n = len(chunk)
            merged = probs[:n]
            for j, m in enumerate(mirrors[1:], start=1):
                part = probs[j * n : (j + 1) * n]
                merged = merged + part.flip([a + 2 for a in m])
            if len(mirrors) > 1:
                merged = merged / len(mirrors)
            merged = merged * weights  # all windows of the batch in one broadcast product
            for region, window_probs in zip(regions, merged, strict=True):
                total[(slice(None), *region)] += window_probs
                norm[region] += weights
    if module is not None and was_training:
        module.train()
    out = total / norm
    return out[(slice(None), *(slice(0, n) for n in spatial))].contiguous()
