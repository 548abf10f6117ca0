"""Seeded, recorded augmentation pipelines: the entry point for training-time augmentation.

`augment` runs a sequence of `augment_random` transforms from one seed and returns the
records of what it applied; `augment_replay.replay` reproduces the output
from those records alone. For an image and its mask::

    image_out, records = augment(image, transforms, seed)
    mask_out = replay(mask, records, label=True)

or, equivalently, ``augment(mask, transforms, seed, label=True)``: the draws depend only on
the seed and the number of dimensions, so both calls see the same geometry. Save the records
(JSON) next to a sample to audit or reproduce it. Arrays are 2D ``[y, x]`` or 3D
``[z, y, x]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medsight.imaging.preprocess.augment_random import RandomTransform
from medsight.imaging.preprocess.augment_replay import AugmentRecord


def augment(
    array: np.ndarray,
    transforms: Sequence[RandomTransform],
    seed: int,
    label: bool = False,
) -> tuple[np.ndarray, list[AugmentRecord]]:
    """Apply ``transforms`` in order with parameters drawn from ``seed``.

    Args:
        array: ``[y, x]`` or ``[z, y, x]`` image, or label map with ``label=True``.
        transforms: random transforms, applied in order (each may skip itself, see ``p``).
        seed: seed of the ``numpy.random.Generator`` all transforms draw from.
        label: the array is a label map: geometric transforms use nearest neighbour and
            keep the dtype, intensity transforms are skipped (but still recorded).

    Returns:
        The augmented array (float32 for images, the input dtype for labels) and the
        records of the transforms that were applied, in order.
    """
    rng = np.random.default_rng(seed)
    out = np.asarray(array) if label else np.asarray(array, dtype=np.float32)
    records: list[AugmentRecord] = []
    for transform in transforms:
        out, record = transform(out, rng, label)
        if record is not None:
            records.append(record)
    return out, records
