"""Reorientation of a `Volume` to named anatomical axes, without interpolation.

Array convention: ``Volume.array`` is ``[z, y, x]`` (optionally ``[z, y, x, channel]``);
voxel index ``(x, y, z)`` maps to millimetres through ``affine_lps()`` / ``affine_ras()``.
Axis codes follow nibabel: ``"RAS"`` means the array's x index increases towards the
patient's Right, y towards Anterior, z towards Superior (NIfTI's canonical order);
``"LPS"`` is what a DICOM axial series usually reads as.

Reorienting only permutes and flips array axes (nibabel's ``io_orientation``,
``ornt_transform`` and ``apply_orientation``, applied to the array in ``(x, y, z)`` order),
and rewrites ``origin_lps``, ``direction`` and ``spacing_mm`` so that every voxel keeps its
world coordinate. Voxel values are copied, never interpolated, so a round trip returns the
exact array; the geometry comes back exact up to float rounding of the origin (~1e-12 mm).
For an oblique acquisition the closest anatomical axes are used, as nibabel does.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    io_orientation,
    ornt_transform,
)

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume

_AXIS_PAIRS = ({"L", "R"}, {"A", "P"}, {"S", "I"})


def orientation_code(volume: Volume) -> str:
    """Three-letter code of the anatomical directions of the array's x, y, z axes.

    Args:
        volume: the volume to describe.

    Returns:
        e.g. ``"LPS"`` for a standard DICOM axial series, ``"RAS"`` after `reorient`.
    """
    return "".join(str(code) for code in aff2axcodes(volume.affine_ras()))


def _target_ornt(axcodes: str) -> np.ndarray:
    codes = axcodes.upper() if isinstance(axcodes, str) else ""
    if len(codes) != 3 or any(sum(c in pair for c in codes) != 1 for pair in _AXIS_PAIRS):
        raise InputError(
            f"orientation {axcodes!r} is not three axis codes with one of L/R, A/P and S/I"
        )
    return axcodes2ornt(tuple(codes))


def reorient(volume: Volume, axcodes: str = "RAS") -> Volume:
    """Permute and flip the array so its ``(x, y, z)`` axes point along ``axcodes``.

    Args:
        volume: the volume to reorient (not modified).
        axcodes: target orientation, one letter from each of L/R, A/P and S/I, in the
            order of the array's x, y and z axes (e.g. ``"RAS"``, ``"LPS"``, ``"PIL"``).

    Returns:
        A new `Volume` with the reordered array (a copy) and matching ``spacing_mm``,
        ``direction`` and ``origin_lps``; every voxel keeps its LPS coordinate.

    Raises:
        InputError: ``axcodes`` is not a valid orientation code, or the volume's direction
            matrix is degenerate so no orientation can be read from it.
    """
    target = _target_ornt(axcodes)
    current = io_orientation(volume.affine_ras())
    if np.isnan(current).any():
        raise InputError("the volume's direction matrix is degenerate; cannot reorient it")
    transform = ornt_transform(current, target)

    ndim = volume.array.ndim
    channel_axes = tuple(range(3, ndim))
    xyz = volume.array.transpose(2, 1, 0, *channel_axes)
    reoriented = apply_orientation(xyz, transform).transpose(2, 1, 0, *channel_axes)

    spacing_xyz = volume.spacing_mm[::-1]
    shape_xyz = volume.shape[::-1]
    direction = np.asarray(volume.direction, dtype=np.float64)
    new_direction = np.empty((3, 3))
    new_spacing_xyz = [0.0, 0.0, 0.0]
    # old (x, y, z) index of the new voxel [0, 0, 0]: the far end of every flipped axis
    first_voxel = np.zeros(3)
    for old_axis in range(3):
        new_axis, sign = int(transform[old_axis, 0]), float(transform[old_axis, 1])
        new_direction[:, new_axis] = direction[:, old_axis] * sign
        new_spacing_xyz[new_axis] = float(spacing_xyz[old_axis])
        if sign < 0:
            first_voxel[old_axis] = shape_xyz[old_axis] - 1
    origin = (volume.affine_lps() @ np.append(first_voxel, 1.0))[:3]

    sx, sy, sz = new_spacing_xyz
    return dataclasses.replace(
        volume,
        array=np.ascontiguousarray(reoriented),
        spacing_mm=(sz, sy, sx),
        origin_lps=origin,
        direction=new_direction,
        meta=copy.deepcopy(volume.meta),
    )
