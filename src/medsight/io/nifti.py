"""NIfTI read/write with nibabel, in the package's `[z, y, x]` array convention.

NIfTI stores voxel axes as ``(i, j, k)`` with an affine to RAS+ mm; our arrays are
``[z, y, x]``, so arrays are transposed on the way in and out and the affine is the
volume's `affine_ras()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np

from medsight.errors import InputError
from medsight.io.atomic import atomic_path
from medsight.io.volume import Volume


def write_nifti(path: str | Path, array_zyx: np.ndarray, affine_ras: np.ndarray) -> Path:
    """Write ``array_zyx`` as NIfTI-1 (``.nii.gz``) with the given RAS affine, atomically."""
    path = Path(path)
    image = nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(2, 1, 0)), affine_ras)
    image.set_qform(affine_ras, code=1)
    image.set_sform(affine_ras, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI file into a `Volume` (LPS geometry derived from its RAS affine).

    Raises:
        InputError: the file is missing, not NIfTI, or not 3D.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        image = cast(nib.Nifti1Image, nib.load(str(path)))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3D image, got {data.ndim}D")
    affine_ras = np.asarray(image.affine, dtype=np.float64)
    affine_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_ras
    zooms = np.linalg.norm(affine_lps[:3, :3], axis=0)
    return Volume(
        array=np.ascontiguousarray(data.transpose(2, 1, 0)),
        spacing_mm=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
        origin_lps=affine_lps[:3, 3],
        direction=affine_lps[:3, :3] / zooms,
        modality="OT",
    )
