"""Geometry transforms on ``[z, y, x]`` arrays: resampling to a spacing, crop/pad to a shape.

Resampling uses torch's trilinear interpolation on the axis-aligned voxel grid, which is
what MONAI's Spacing does for an identity direction matrix, without its affine bookkeeping
(the reader has already put slices in order; orientation handling belongs to the reader).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def resampled_shape(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    target_mm: tuple[float, float, float],
) -> tuple[int, int, int]:
    """Voxel counts that keep the physical extent when resampling to ``target_mm``."""
    z, y, x = (
        max(1, round(n * s / t)) for n, s, t in zip(shape, spacing_mm, target_mm, strict=True)
    )
    return z, y, x


def resample_to_spacing(
    array: np.ndarray,
    spacing_mm: tuple[float, float, float],
    target_mm: tuple[float, float, float],
    mode: str = "trilinear",
) -> np.ndarray:
    """Resample ``array`` from ``spacing_mm`` to ``target_mm`` (``mode``: trilinear or nearest)."""
    size = resampled_shape(array.shape, spacing_mm, target_mm)
    if size == array.shape:
        return np.asarray(array, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    out = F.interpolate(tensor, size=size, mode=mode, **kwargs)
    return out[0, 0].numpy()


def crop_or_pad(
    array: np.ndarray,
    shape: tuple[int, int, int],
    center: tuple[float, float, float] | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """Cut a ``shape`` box centred on ``center`` (voxel index; default: the array centre).

    Parts of the box outside the array are filled with ``fill``.
    """
    out = np.full(shape, fill, dtype=array.dtype)
    if center is None:
        center = tuple((n - 1) / 2 for n in array.shape)
    src, dst = [], []
    for n_in, n_out, c in zip(array.shape, shape, center, strict=True):
        start = int(round(c - (n_out - 1) / 2))
        lo, hi = max(start, 0), min(start + n_out, n_in)
        src.append(slice(lo, max(lo, hi)))
        dst.append(slice(lo - start, lo - start + max(0, hi - lo)))
    out[tuple(dst)] = array[tuple(src)]
    return out


def foreground_center(array: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Centre (voxel index) of the bounding box of voxels above ``threshold``.

    The array centre when no voxel is above it.
    """
    idx = [
        np.nonzero((array > threshold).any(axis=tuple(a for a in range(3) if a != axis)))[0]
        for axis in range(3)
    ]
    if any(i.size == 0 for i in idx):
        return tuple((n - 1) / 2 for n in array.shape)
    return tuple((i[0] + i[-1]) / 2 for i in idx)


def enclosed_air(array_hu: np.ndarray, threshold_hu: float) -> np.ndarray:
    """Voxels below ``threshold_hu`` enclosed by tissue in their axial slice (lungs, bowel gas)."""
    body = array_hu > threshold_hu
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in body])
    return filled & ~body
