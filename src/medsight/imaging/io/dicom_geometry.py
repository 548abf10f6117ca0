"""Plane geometry of DICOM images and the ordering of planes into one stack.

Conventions are those of `medsight.imaging.io.volume`: LPS millimetres, ``row_dir`` along a row
(ImageOrientationPatient[:3], increasing column index), ``col_dir`` down a column (IOP[3:],
increasing row index), PixelSpacing = (spacing between rows, spacing between columns).

Slices are ordered by ImagePositionPatient projected on the slice normal (row_dir x col_dir),
never by file name or InstanceNumber. What the positions reveal is reported, not hidden:

* duplicate positions (two slices at one place) and positions that do not lie on one line
  (several stacks in one series) cannot be a volume: `InputError`;
* irregular spacing and missing slices are warnings (the median spacing is used, and the
  warning says how far a slice may then sit from where the affine puts it);
* gantry tilt (slices stepping at an angle to their own normal) is a warning, and the
  stack's step direction, not the normal, becomes the volume's third axis, so the affine is
  sheared and world coordinates stay exact.

Hand-written because pydicom parses tags but does not assemble geometry, and the libraries
that do (SimpleITK/GDCM, dcm2niix) either resample or drop these checks silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from medsight.errors import InputError
from medsight.imaging.io.dicom_tags import positive_spacing, tag_floats, tag_value

#: Tolerances for a unit vector's length and for two directions' dot product.
ORTHONORMAL_TOL = 1e-3
#: Slices closer than this (mm) along the normal are at "one position".
DUPLICATE_TOL_MM = 1e-3
#: Tilt below this (degrees) is rounding in the position strings, not a tilt.
TILT_TOL_DEG = 0.01
#: A gap more than this many times the median spacing means slices are missing.
MISSING_GAP_FACTOR = 1.5
#: Gaps differing from the median by more than this fraction are "irregular".
IRREGULAR_GAP_FRACTION = 0.01


@dataclass(frozen=True)
class Plane:
    """Orientation and in-plane spacing shared by the slices of a stack."""

    row_dir: np.ndarray
    col_dir: np.ndarray
    pixel_spacing_mm: tuple[float, float]  # (between rows, between columns)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)


@dataclass(frozen=True)
class Stack:
    """How slices at given positions form one volume."""

    order: np.ndarray  # indices that sort the inputs along the stack
    origin_lps: np.ndarray  # position of the first slice in that order
    step_dir: np.ndarray  # unit vector from one slice to the next
    spacing_mm: float  # distance between consecutive slices (median)
    irregular: bool
    warnings: tuple[str, ...]


def orientation(item: Dataset, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(row_dir, col_dir) from ImageOrientationPatient in ``item``, validated.

    Raises:
        InputError: IOP is missing, malformed, non-finite, or its two vectors are not unit
            length and perpendicular (a non-orthonormal orientation gives a wrong affine).
    """
    iop = tag_floats(item, "ImageOrientationPatient", 6, where)
    row_dir, col_dir = iop[:3], iop[3:]
    if (
        abs(np.linalg.norm(row_dir) - 1) > ORTHONORMAL_TOL
        or abs(np.linalg.norm(col_dir) - 1) > ORTHONORMAL_TOL
        or abs(float(row_dir @ col_dir)) > ORTHONORMAL_TOL
    ):
        raise InputError(f"{where}: ImageOrientationPatient is not orthonormal")
    # Renormalise so the volume's direction matrix is exactly orthonormal.
    row_dir = row_dir / np.linalg.norm(row_dir)
    col_dir = col_dir - (col_dir @ row_dir) * row_dir
    return row_dir, col_dir / np.linalg.norm(col_dir)


def pixel_spacing(item: Dataset, where: str, keyword: str = "PixelSpacing") -> tuple[float, float]:
    """(row spacing, column spacing) in mm from ``keyword`` in ``item``, validated.

    Raises:
        InputError: missing, not two values, non-finite, zero or negative.
    """
    values = positive_spacing(tag_floats(item, keyword, 2, where), keyword, where)
    return float(values[0]), float(values[1])


def optional_spacing(item: Dataset, keyword: str, where: str) -> float | None:
    """A one-value spacing tag (SliceThickness, SpacingBetweenSlices) or None when absent.

    Raises:
        InputError: present but non-numeric, non-finite, zero or negative.
    """
    if tag_value(item, keyword, where) is None:
        return None
    return float(positive_spacing(tag_floats(item, keyword, 1, where), keyword, where)[0])


def stack_slices(
    positions: np.ndarray,
    plane: Plane,
    names: list[str],
    fallback_spacing_mm: float,
) -> Stack:
    """Order slices along their normal and check they form one regular stack.

    Args:
        positions: ``(n, 3)`` ImagePositionPatient of each slice, LPS mm.
        plane: the orientation and in-plane spacing the slices share.
        names: one label per slice for messages (file path or ``"path frame 3"``).
        fallback_spacing_mm: spacing used for a single slice.

    Returns:
        The order, origin, step direction, median spacing and warnings.

    Raises:
        InputError: two slices share a position, or positions do not lie on one line.
    """
    normal = plane.normal
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    distances = distances[order]
    sorted_positions = positions[order]
    origin = sorted_positions[0].astype(np.float64)
    n = len(order)
    if n == 1:
        return Stack(order, origin, normal, fallback_spacing_mm, False, ())
    gaps = np.diff(distances)
    if np.any(gaps < DUPLICATE_TOL_MM):
        k = int(np.argmin(gaps))
        raise InputError(
            f"{names[order[k + 1]]}: two slices share one ImagePositionPatient "
            f"(also {names[order[k]]}); a series with repeated positions (several phases, "
            "echoes or stacks) is not one volume"
        )
    spacing = float(np.median(gaps))
    warnings: list[str] = []
    # In-plane drift of each slice relative to the first, against distance along the normal.
    offsets = sorted_positions - origin
    along = offsets @ normal
    in_plane = offsets - np.outer(along, normal)
    drift_per_mm = (in_plane.T @ along) / float(along @ along)
    residual = in_plane - np.outer(along, drift_per_mm)
    scatter = float(np.max(np.linalg.norm(residual, axis=1)))
    if scatter > 0.5 * min(plane.pixel_spacing_mm):
        raise InputError(
            f"{names[order[0]]}: slice positions scatter {scatter:.2f} mm off one line; "
            "the series holds more than one stack"
        )
    step = normal + drift_per_mm
    step_dir = step / np.linalg.norm(step)
    tilt_deg = math.degrees(math.acos(min(1.0, abs(float(step_dir @ normal)))))
    if tilt_deg < TILT_TOL_DEG:
        step_dir = normal
    else:
        warnings.append(
            f"gantry tilt: slices step {tilt_deg:.2f} degrees off the slice normal; "
            "the affine is sheared to keep world coordinates exact"
        )
    # Spacing along the (possibly tilted) step, from the spacing along the normal.
    step_spacing = spacing / float(step_dir @ normal)
    expected = distances[0] + spacing * np.arange(n)
    position_error = float(np.max(np.abs(distances - expected)))
    missing_gaps = gaps > MISSING_GAP_FACTOR * spacing
    irregular = bool(
        np.any(np.abs(gaps - spacing) > IRREGULAR_GAP_FRACTION * spacing + DUPLICATE_TOL_MM)
    )
    if np.any(missing_gaps):
        absent = int(np.sum(np.rint(gaps[missing_gaps] / spacing) - 1))
        warnings.append(
            f"missing slices: {int(missing_gaps.sum())} gap(s) up to "
            f"{float(gaps.max()):.3g} mm where {spacing:.3g} mm is expected (about {absent} "
            f"slice(s) absent); slices sit up to {position_error:.3g} mm from the affine"
        )
    elif irregular:
        warnings.append(
            f"irregular slice spacing: gaps from {float(gaps.min()):.4g} to "
            f"{float(gaps.max()):.4g} mm, median {spacing:.4g} mm used; slices sit up to "
            f"{position_error:.3g} mm from the affine"
        )
    return Stack(order, origin, step_dir, step_spacing, irregular, tuple(warnings))
