"""Cropping and padding a `Volume` while keeping every voxel's world coordinate.

Array convention: ``[z, y, x]`` (optionally ``[z, y, x, channel]``), spacing ``(z, y, x)`` mm,
``origin_lps`` the centre of voxel ``[0, 0, 0]`` (see `medsight.imaging.io.volume`). Cutting a box
that starts at voxel ``(z0, y0, x0)`` moves the origin to that voxel's centre,
``origin + direction @ ((x0, y0, z0) * spacing_xyz)``; a negative start (padding) moves it
outwards. Bounding boxes are ``((z0, z1), (y0, y1), (x0, x1))``, half-open voxel indices
into the input array (JSON-serialisable, so a prediction can be pasted back).

The array arithmetic of `pad_or_crop_volume` is `medsight.imaging.preprocess.geometry.crop_or_pad`;
this module adds the geometry.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.geometry import crop_or_pad

BoundingBox = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def _moved(volume: Volume, array: np.ndarray, start_zyx: Sequence[int]) -> Volume:
    spacing_xyz = np.asarray(volume.spacing_mm[::-1], dtype=np.float64)
    shift_xyz = np.asarray(start_zyx[::-1], dtype=np.float64) * spacing_xyz
    origin = np.asarray(volume.origin_lps, dtype=np.float64) + volume.direction @ shift_xyz
    return dataclasses.replace(
        volume, array=array, origin_lps=origin, meta=copy.deepcopy(volume.meta)
    )


def crop_to_foreground(
    volume: Volume, threshold: float, margin_mm: float = 0.0
) -> tuple[Volume, BoundingBox]:
    """Cut the volume to the bounding box of voxels above ``threshold``, plus a margin.

    Args:
        volume: the volume to crop (not modified). For colour volumes a voxel is
            foreground when any channel is above the threshold.
        threshold: intensity above which a voxel is foreground (e.g. -500 HU for the body
            in CT, a small positive value for MR).
        margin_mm: extra border kept around the box on every side, in millimetres (rounded
            up to whole voxels per axis, clipped to the array).

    Returns:
        The cropped `Volume` (a copy, origin moved to the box's first voxel) and its
        bounding box in the input's voxel indices. When no voxel is above the threshold
        nothing is cut: the whole volume and the full box come back.

    Raises:
        ValueError: ``margin_mm`` is negative.
    """
    if margin_mm < 0:
        raise ValueError(f"margin_mm must be >= 0, got {margin_mm}")
    values = np.asarray(volume.array)
    foreground = np.asarray(values > threshold)
    if foreground.ndim == 4:
        foreground = np.asarray(foreground.any(axis=3))
    box: list[tuple[int, int]] = []
    for axis, (n, spacing) in enumerate(zip(volume.shape, volume.spacing_mm, strict=True)):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(foreground.any(axis=others))
        if hits.size == 0:
            box = [(0, m) for m in volume.shape]
            break
        margin = math.ceil(margin_mm / spacing - 1e-9)
        box.append((max(0, int(hits[0]) - margin), min(n, int(hits[-1]) + 1 + margin)))
    bbox: BoundingBox = (box[0], box[1], box[2])
    cut = tuple(slice(lo, hi) for lo, hi in bbox)
    cropped = _moved(volume, np.ascontiguousarray(values[cut]), [lo for lo, _ in bbox])
    return cropped, bbox


def pad_or_crop_volume(
    volume: Volume,
    shape: Sequence[int],
    fill: float = 0.0,
    center: Sequence[float] | None = None,
) -> Volume:
    """Cut or pad the volume to ``shape`` (z, y, x), centred on ``center``.

    Args:
        volume: the volume (not modified).
        shape: output spatial shape ``(z, y, x)``.
        fill: value of padded voxels; pass the modality's background (-1024 for CT in HU,
            0 for most normalised images).
        center: voxel index ``(z, y, x)`` the box is centred on; default the array centre
            (`medsight.imaging.preprocess.geometry.foreground_center` gives a foreground centre).

    Returns:
        A new `Volume` of ``shape`` whose origin is moved so every kept voxel keeps its
        world coordinate.

    Raises:
        ValueError: ``shape`` is not three positive integers.
    """
    out_shape = tuple(int(n) for n in shape)
    if len(out_shape) != 3 or min(out_shape) < 1:
        raise ValueError(f"shape must be three positive integers (z, y, x), got {shape}")
    z, y, x = out_shape
    cz, cy, cx = (
        ((n - 1) / 2 for n in volume.shape) if center is None else (float(c) for c in center)
    )
    centre = (cz, cy, cx)
    # the same start crop_or_pad computes, so the origin follows the array exactly
    start = [int(round(c - (n_out - 1) / 2)) for n_out, c in zip(out_shape, centre, strict=True)]
    values = np.asarray(volume.array)
    if values.ndim == 4:
        channels = [
            crop_or_pad(values[..., c], (z, y, x), centre, fill) for c in range(values.shape[3])
        ]
        array = np.stack(channels, axis=-1)
    else:
        array = crop_or_pad(values, (z, y, x), centre, fill)
    return _moved(volume, array, start)
