"""Resampling a `Volume` to a target voxel spacing, keeping its place in the world.

Array convention: ``[z, y, x]`` (optionally ``[z, y, x, channel]``), spacing ``(z, y, x)`` mm,
``origin_lps`` the centre of voxel ``[0, 0, 0]`` (see `medsight.imaging.io.volume`).

Grid convention (torch's ``align_corners=False``, with the spacing kept exact): the outer
corner of the first voxel stays fixed in the world, voxels of the new grid are exactly
``target_spacing_mm`` apart, and each axis gets ``round(n * spacing / target)`` voxels, so the
far face of the field of view moves by at most half a new voxel. The new origin (centre of
the new first voxel) is therefore ``origin + direction @ ((target - spacing) / 2)``.

Interpolation is scipy.ndimage's ``affine_transform`` with a diagonal matrix: images use
linear (order 1) or cubic B-spline (order 3) interpolation; label masks use nearest neighbour
(order 0), so no label value is invented and the dtype is kept. The existing
`medsight.imaging.preprocess.geometry.resample_to_spacing` works on bare arrays through torch and
scales by ``n / n'`` rather than keeping the spacing exact; this module carries geometry.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import ndimage

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.geometry import resampled_shape


def resample_volume(
    volume: Volume,
    target_spacing_mm: Sequence[float],
    kind: Literal["image", "mask"] = "image",
    order: int = 1,
) -> Volume:
    """Resample ``volume`` to ``target_spacing_mm`` (z, y, x), keeping its world extent.

    Args:
        volume: the volume to resample (not modified).
        target_spacing_mm: new voxel spacing ``(z, y, x)`` in millimetres.
        kind: ``"image"`` interpolates with spline ``order`` into float32; ``"mask"`` uses
            nearest neighbour and keeps the dtype and the set of label values.
        order: spline order for images, 1 (linear) or 3 (cubic B-spline); ignored for masks.

    Returns:
        A new `Volume` with spacing exactly ``target_spacing_mm`` and the origin moved so the
        first voxel's outer corner stays where it was.

    Raises:
        InputError: the target spacing is not three finite positive numbers (it comes
            from a plan or the command line).
        ValueError: ``kind`` or ``order`` is not one of the values above.
    """
    target = tuple(float(t) for t in target_spacing_mm)
    if len(target) != 3 or not all(math.isfinite(t) and t > 0 for t in target):
        raise InputError(
            f"target spacing must be three positive numbers (z, y, x) in mm, got {target}"
        )
    if kind not in ("image", "mask"):
        raise ValueError(f"kind must be 'image' or 'mask', got {kind!r}")
    if kind == "image" and order not in (1, 3):
        raise ValueError(f"order must be 1 (linear) or 3 (cubic) for images, got {order}")

    spacing = np.asarray(volume.spacing_mm, dtype=np.float64)
    step = np.asarray(target) / spacing  # old voxel indices per new voxel
    # new voxel k sits at old index (k + 1/2) * step - 1/2 (corner-anchored grids)
    offset = 0.5 * step - 0.5
    shape = resampled_shape(volume.shape, volume.spacing_mm, (target[0], target[1], target[2]))

    spline_order = 0 if kind == "mask" else order
    source = np.asarray(volume.array)
    out_dtype: np.dtype = source.dtype if kind == "mask" else np.dtype(np.float32)
    work = source.astype(np.uint8) if source.dtype == np.bool_ else source

    def resample(plane: np.ndarray) -> np.ndarray:
        return ndimage.affine_transform(
            plane,
            step,
            offset=offset,
            output_shape=shape,
            order=spline_order,
            mode="nearest",
            output=work.dtype if kind == "mask" else np.float32,
        )

    if work.ndim == 4:
        array = np.stack([resample(work[..., c]) for c in range(work.shape[3])], axis=-1)
    else:
        array = resample(work)

    shift_xyz = ((np.asarray(target) - spacing) / 2.0)[::-1]
    origin = np.asarray(volume.origin_lps, dtype=np.float64) + volume.direction @ shift_xyz
    return dataclasses.replace(
        volume,
        array=array.astype(out_dtype, copy=False),
        spacing_mm=target,
        origin_lps=origin,
        meta=copy.deepcopy(volume.meta),
    )
