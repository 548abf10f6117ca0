"""The in-memory image type every reader returns.

Array convention (whole package): a volume is a numpy array indexed ``[z, y, x]`` =
``[slice, row, column]``, float32, in the modality's physical unit (Hounsfield units for CT).
Geometry follows DICOM's patient coordinate system (LPS, millimetres):

* ``origin_lps`` is the centre of voxel ``[0, 0, 0]``;
* ``direction`` is a 3x3 matrix whose columns are the unit vectors along x (row direction,
  DICOM ImageOrientationPatient[:3]), y (column direction, IOP[3:]) and z (slice normal,
  pointing towards increasing slice index);
* ``spacing_mm`` is ``(z, y, x)``.

``affine_ras()`` gives the NIfTI-style 4x4 affine (voxel ``(x, y, z)`` index -> RAS+ mm).
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
        z, y, x = self.array.shape
        return int(z), int(y), int(x)

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
