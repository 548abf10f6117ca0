"""Data-driven intensity normalisation for modalities without a physical unit (MR, X-ray).

CT keeps its fixed Hounsfield windows (`medsight.imaging.preprocess.intensity.window_hu`); MR
intensities vary by scanner and sequence, so they are normalised from the image itself, as
nnU-Net does: a percentile clip followed by a rescale to [0, 1], or a z-score. Both accept an
optional foreground mask so that the statistics come from the body, not from the air around
it; the transform is applied to the whole array. Arrays are any shape (``[y, x]`` or
``[z, y, x]``); outputs are float32, statistics are computed in float64.

`foreground_mask` finds the body without units: voxels above a tenth of the image's robust
intensity range, without the specks that background noise puts above it (parts under a
tenth of the largest are dropped), with the holes of each axial slice filled (skull, CSF
and ventricles are dark but inside the head). `image_zscore` is the MR scheme of the
preprocessing contract: clip to the foreground's percentiles, z-score with the foreground's
mean and standard deviation, and set the air outside the foreground to 0 (nnU-Net's
``use_mask_for_norm``), so that padding and background have one value in every image.

Pure numpy: MONAI's ``ScaleIntensityRangePercentiles`` and ``NormalizeIntensity`` do the same
on tensors, but normalisation runs before any tensor exists (see `intensity`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsight.errors import InputError

#: share of the image's robust intensity range above which a voxel is foreground
FOREGROUND_FRACTION = 0.1


def _selected(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    values = np.asarray(array, dtype=np.float64)
    if mask is None:
        return values.ravel()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {mask.shape} differs from array shape {values.shape}")
    if not mask.any():
        raise InputError("the normalisation mask selects no voxel (empty foreground)")
    return values[mask]


def percentile_normalise(
    array: np.ndarray,
    low: float = 0.5,
    high: float = 99.5,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Clip to the ``low``/``high`` percentiles and rescale linearly to [0, 1].

    Args:
        array: intensities, any shape.
        low: lower percentile (0-100), mapped to 0.
        high: upper percentile (0-100), mapped to 1.
        mask: optional boolean array of ``array``'s shape; percentiles come from the
            voxels it selects.

    Returns:
        float32 array in [0, 1]; all zeros when the two percentiles coincide (a flat image).

    Raises:
        ValueError: the percentiles are out of order or outside [0, 100], or the mask's
            shape differs from the array's (programming errors).
        InputError: the mask selects no voxel.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    lo, hi = np.percentile(_selected(array, mask), [low, high])
    values = np.asarray(array, dtype=np.float64)
    if not hi > lo:
        return np.zeros(values.shape, dtype=np.float32)
    out = (np.clip(values, lo, hi) - lo) / (hi - lo)
    return out.astype(np.float32)


def zscore_normalise(array: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Subtract the mean and divide by the standard deviation (of the masked voxels).

    Args:
        array: intensities, any shape.
        mask: optional boolean array of ``array``'s shape; mean and standard deviation
            come from the voxels it selects, so those voxels end with mean 0 and std 1.

    Returns:
        float32 array; a flat image becomes all zeros (the std is floored at 1e-8, as in
        nnU-Net).

    Raises:
        ValueError: the mask's shape differs from the array's.
        InputError: the mask selects no voxel.
    """
    selected = _selected(array, mask)
    mean, std = selected.mean(), selected.std()
    out = (np.asarray(array, dtype=np.float64) - mean) / max(float(std), 1e-8)
    return out.astype(np.float32)


def foreground_mask(array: np.ndarray, fraction: float = FOREGROUND_FRACTION) -> np.ndarray:
    """Boolean mask of the body in an image without physical units (MR, X-ray).

    Args:
        array: intensities, ``[z, y, x]`` (or ``[y, x]``).
        fraction: threshold as a share of the range between the image's 0.5th and 99.5th
            percentiles, counted from the 0.5th (the background level).

    Returns:
        The mask: connected parts of at least a tenth of the largest part's size, holes of
        each axial slice filled. Everything is foreground when the image is flat or the
        threshold keeps under 1% of the voxels (no background to remove).
    """
    values = np.asarray(array, dtype=np.float32)
    low, high = np.percentile(values, [0.5, 99.5])
    everything = np.ones(values.shape, dtype=bool)
    if not high > low:
        return everything
    mask = values > low + fraction * (high - low)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = np.isin(labels, np.nonzero(sizes >= 0.1 * sizes.max())[0] + 1)
    planes = mask if mask.ndim == 3 else mask[None]
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in planes]).reshape(mask.shape)
    if filled.sum() < 0.01 * filled.size:
        return everything
    return filled


def image_zscore(
    array: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.99)
) -> tuple[np.ndarray, np.ndarray]:
    """The MR scheme: foreground percentile clip, foreground z-score, background 0.

    Args:
        array: intensities of one image, any shape.
        percentiles: clip bounds, percentiles of the foreground's intensities.

    Returns:
        The float32 normalised image and the foreground mask (see `foreground_mask`).
    """
    values = np.asarray(array, dtype=np.float64)
    mask = foreground_mask(values)
    low, high = np.percentile(values[mask], percentiles)
    clipped = np.clip(values, low, high)
    out = zscore_normalise(clipped, mask)
    out[~mask] = 0.0
    return out, mask
