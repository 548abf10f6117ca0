"""The in-memory image type every reader returns.

Array convention (whole package): a volume is a numpy array indexed ``[z, y, x]`` =
``[slice, row, column]``, float32, in the modality's physical unit (Hounsfield units for CT).
Colour images (RGB DICOM, PNG, JPEG) carry a trailing channel axis, ``[z, y, x, 3]``; a 2D
image is a volume of one slice.
Geometry follows DICOM's patient coordinate system (LPS, millimetres):

* ``origin_lps`` is the centre of voxel ``[0, 0, 0]``;
* ``direction`` is a 3x3 matrix whose columns are the unit vectors along x (row direction,
  DICOM ImageOrientationPatient[:3]), y (column direction, IOP[3:]) and z (slice normal,
  pointing towards increasing slice index);
* ``spacing_mm`` is ``(z, y, x)``.

``affine_ras()`` gives the NIfTI-style 4x4 affine (voxel ``(x, y, z)`` index -> RAS+ mm).
When DICOM slices step at an angle to their normal (gantry tilt) the third column is the
step direction, so the affine is sheared and world coordinates stay exact.

``meta`` is a small, JSON-serialisable, PHI-free record: only the keys below, never a name,
ID, date, UID or free-text description from the source.

* ``kind``: ``dicom-series``, ``dicom-file``, ``dicom-multiframe``, ``nifti``, ``png``, ``jpeg``;
* ``n_slices``: slices (frames) in the volume; ``n_series``: series in the folder read;
* ``transfer_syntax``: DICOM transfer syntax name(s); ``photometric``: the
  PhotometricInterpretation; ``nifti_version``: 1 or 2;
* ``slice_gaps_irregular``: slice spacing is not uniform (see ``warnings``); ``bits``: 8 or
  16 (PNG/JPEG);
* ``n_volumes``, ``volume``: for one volume read from a 4D NIfTI, how many it holds and
  which one this is;
* ``warnings``: sentences about anything the reader assumed or found odd (missing slices,
  irregular spacing, gantry tilt, geometry assumed, several series) that a user must see;
  they name files by file name only, never by full path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    """A 3D image with its geometry and a PHI-free metadata record."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_lps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = "OT"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(z, y, x)``, without a colour axis."""
        z, y, x = self.array.shape[:3]
        return int(z), int(y), int(x)

    @property
    def channels(self) -> int:
        """1 for grey-scale, 3 for RGB (the trailing axis of ``array``)."""
        return int(self.array.shape[3]) if self.array.ndim == 4 else 1

    @property
    def warnings(self) -> list[str]:
        """What the reader assumed or found odd (``meta["warnings"]``), empty if nothing."""
        return list(self.meta.get("warnings", []))

    def affine_lps(self) -> np.ndarray:
        """4x4 affine mapping voxel index ``(x, y, z)`` to LPS millimetres."""
        sz, sy, sx = self.spacing_mm
        affine = np.eye(4)
        affine[:3, :3] = self.direction @ np.diag([sx, sy, sz])
        affine[:3, 3] = self.origin_lps
        return affine

    def affine_ras(self) -> np.ndarray:
        """4x4 affine mapping voxel index ``(x, y, z)`` to RAS+ millimetres (NIfTI convention)."""
        affine = self.affine_lps()
        affine[:3, :] = LPS_TO_RAS @ affine[:3, :]
        return affine
