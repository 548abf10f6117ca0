"""Seeded patch sampling with foreground oversampling, nnU-Net style.

A patch is either placed uniformly at random, or (with probability ``foreground_fraction``)
around a labelled voxel of one structure chosen uniformly among those the case holds, so a
nodule of a few hundred voxels is seen as often as lungs of a million. Patches reaching
past the image are padded (image with its background value, labels with 0). Augmentation is
a left-right mirror and a small intensity scale/shift, drawn from the same generator, so a
seed fixes every batch.

Arrays are ``[z, y, x]``; batches are ``(N, 1, z, y, x)`` images (float32) and ``(N, 1, z,
y, x)`` label indices (int64), as MONAI's losses take them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medsight.imaging.data.volume_cache import CachedVolumes

#: labelled voxels remembered per structure and case (enough to place patches anywhere)
MAX_LOCATIONS = 4000


def foreground_locations(
    labels: np.ndarray, num_classes: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """Up to `MAX_LOCATIONS` voxel indices ``(n, 3)`` per structure present in ``labels``."""
    out: dict[int, np.ndarray] = {}
    for k in range(1, num_classes):
        where = np.argwhere(labels == k)
        if len(where) > MAX_LOCATIONS:
            where = where[rng.choice(len(where), MAX_LOCATIONS, replace=False)]
        if len(where):
            out[k] = where.astype(np.int32)
    return out


def crop_padded(
    array: np.ndarray, corner: Sequence[int], size: Sequence[int], fill: float
) -> np.ndarray:
    """``array[corner : corner + size]``, padded with ``fill`` where it leaves the array."""
    out = np.full(tuple(size), fill, dtype=array.dtype)
    src, dst = [], []
    for c, s, n in zip(corner, size, array.shape, strict=True):
        lo, hi = max(c, 0), min(c + s, n)
        src.append(slice(lo, max(lo, hi)))
        dst.append(slice(lo - c, lo - c + max(0, hi - lo)))
    out[tuple(dst)] = array[tuple(src)]
    return out


class PatchSampler:
    """Draws training batches from cached cases."""

    def __init__(
        self,
        images: CachedVolumes,
        labels: CachedVolumes,
        num_classes: int,
        patch_size: tuple[int, int, int],
        foreground_fraction: float,
        background: float,
        seed: int,
    ) -> None:
        self.images = images
        self.labels = labels
        self.patch_size = patch_size
        self.foreground_fraction = foreground_fraction
        self.background = background
        rng = np.random.default_rng(seed)
        self.locations = [
            foreground_locations(labels[i], num_classes, rng) for i in range(len(labels))
        ]

    def _corner(self, i: int, shape: tuple[int, ...], generator: torch.Generator) -> list[int]:
        size = self.patch_size
        forced = torch.rand((), generator=generator) < self.foreground_fraction
        classes = sorted(self.locations[i])
        if forced and classes:
            k = classes[int(torch.randint(len(classes), (), generator=generator))]
            points = self.locations[i][k]
            z, y, x = points[int(torch.randint(len(points), (), generator=generator))]
            # the voxel lands anywhere inside the patch
            return [
                int(c) - int(torch.randint(s, (), generator=generator))
                for c, s in zip((z, y, x), size, strict=True)
            ]
        return [
            int(torch.randint(min(0, n - s), max(0, n - s) + 1, (), generator=generator))
            for n, s in zip(shape, size, strict=True)
        ]

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One augmented batch ``(images, labels)``."""
        xs, ys = [], []
        for _ in range(batch_size):
            i = int(torch.randint(len(self.images), (), generator=generator))
            image = np.load(self.images.paths[i], mmap_mode="r", allow_pickle=False)
            labels = np.load(self.labels.paths[i], mmap_mode="r", allow_pickle=False)
            corner = self._corner(i, image.shape, generator)
            x = crop_padded(image, corner, self.patch_size, self.background).astype(np.float32)
            y = crop_padded(labels, corner, self.patch_size, 0).astype(np.int64)
            if torch.rand((), generator=generator) < 0.5:
                x, y = x[..., ::-1], y[..., ::-1]
            scale = 1.0 + 0.1 * (2 * float(torch.rand((), generator=generator)) - 1)
            shift = 0.1 * (2 * float(torch.rand((), generator=generator)) - 1)
            xs.append(np.ascontiguousarray(x) * np.float32(scale) + np.float32(shift))
            ys.append(np.ascontiguousarray(y))
        return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))[:, None]
