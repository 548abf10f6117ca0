"""NIfTI-1/2 read/write with nibabel, in the package's `[z, y, x]` array convention.

NIfTI stores voxel axes as ``(i, j, k)`` with an affine to RAS+ mm; our arrays are
``[z, y, x]``, so arrays are transposed on the way in and out and the affine is the
volume's `affine_ras()` (nibabel picks sform, else qform, else pixdim, as the standard says).

Reading checks the header before the data: dimensions against `ReadLimits` (a header can
claim any size; nibabel reads lazily, so nothing is allocated until the check passed) and
the affine (finite, invertible), so a broken qform/sform cannot become a wrong geometry.
Writing validates fully (highdicom's charter): a 3D array, a finite invertible 4x4 affine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medsight.errors import InputError
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.volume import Volume
from medsight.runs.atomic import atomic_path

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_nifti(path: str | Path, array_zyx: np.ndarray, affine_ras: np.ndarray) -> Path:
    """Write ``array_zyx`` as NIfTI-1 with the given RAS affine (qform and sform), atomically.

    Boolean arrays are stored as uint8; other dtypes are kept.

    Raises:
        ValueError: the array is not 3D or the affine is not a finite, invertible 4x4
            (a programming error: writers are handed arrays by code, not by users).
    """
    path = Path(path)
    array_zyx = np.asarray(array_zyx)
    if array_zyx.ndim != 3:
        raise ValueError(f"write_nifti needs a 3D [z, y, x] array, got shape {array_zyx.shape}")
    affine_ras = np.asarray(affine_ras, dtype=np.float64)
    _check_affine(affine_ras)
    if array_zyx.dtype == np.bool_:
        array_zyx = array_zyx.astype(np.uint8)
    image = nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(2, 1, 0)), affine_ras)
    image.set_qform(affine_ras, code=1)
    image.set_sform(affine_ras, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path


def write_volume_nifti(path: str | Path, volume: Volume) -> Path:
    """Write a grey-scale `Volume` (float32 values) as NIfTI-1 with its RAS affine.

    Raises:
        ValueError: the volume has a colour axis (NIfTI images here are scalar).
    """
    if volume.channels != 1:
        raise ValueError("write_volume_nifti writes scalar volumes; this one has colour")
    return write_nifti(path, volume.array, volume.affine_ras())


def write_mask_nifti(path: str | Path, mask_zyx: np.ndarray, reference: Volume) -> Path:
    """Write an integer label map on ``reference``'s grid (uint8, or uint16 past 255 labels).

    Raises:
        ValueError: the mask's shape differs from the reference's, or it holds negative or
            non-integer labels.
    """
    mask_zyx = np.asarray(mask_zyx)
    if mask_zyx.shape != reference.shape:
        raise ValueError(f"mask shape {mask_zyx.shape} differs from the volume's {reference.shape}")
    if mask_zyx.dtype.kind == "f" and not np.array_equal(mask_zyx, np.rint(mask_zyx)):
        raise ValueError("mask labels must be integers")
    if mask_zyx.size and mask_zyx.min() < 0:
        raise ValueError("mask labels must not be negative")
    top = int(mask_zyx.max()) if mask_zyx.size else 0
    dtype = np.uint8 if top <= 255 else np.uint16
    return write_nifti(path, mask_zyx.astype(dtype), reference.affine_ras())


def read_nifti(
    path: str | Path, limits: ReadLimits = DEFAULT_LIMITS, volume: int | None = None
) -> Volume:
    """Read a NIfTI-1 or NIfTI-2 file (``.nii`` or ``.nii.gz``) into a `Volume`.

    A 2D image becomes one slice; a 4D image with one volume is squeezed. A volume picked
    from a 4D image records ``n_volumes`` and ``volume`` in its meta.

    Args:
        path: the file.
        limits: size limits checked from the header before the data are read.
        volume: for a 4D image (time series, several channels), the index along the 4th
            dimension to read; only that volume is read from disk. 0 is accepted for a 3D
            image (its only volume).

    Raises:
        InputError: the file is missing or not NIfTI; its dimensions exceed ``limits``; it
            holds several volumes and ``volume`` does not pick one, or ``volume`` is out of
            range; its affine is not finite or not invertible; or its data are truncated or
            of a type that is not a number.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise InputError(f"{path}: NIfTI files must be named .nii or .nii.gz; rename it")
    try:
        image: Any = nib.load(where)
        header = image.header
        shape = tuple(int(d) for d in image.shape)
    except Exception as exc:  # nibabel raises many types for bad headers
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{path}: not a NIfTI-1/2 file ({type(image).__name__})")
    full_shape = shape
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    index: tuple[int | slice, ...] = ()
    n_volumes = shape[3] if len(shape) == 4 else 1
    if volume is not None and not 0 <= volume < n_volumes:
        raise InputError(f"{path}: volume {volume} is outside 0..{n_volumes - 1}")
    if len(shape) == 4 and volume is not None:
        index = (slice(None), slice(None), slice(None), volume)
        shape = shape[:3]
    if len(shape) > 3:
        raise InputError(
            f"{path}: {len(shape)}D image {shape} holds several volumes (channels or time "
            f"points); pick one to read (`medsight inspect {path.name} --volume N`)"
        )
    shape = shape + (1,) * (3 - len(shape))
    nx, ny, nz = shape
    limits.check_plane(ny, nx, where, rows_tag="dim[2]", columns_tag="dim[1]")
    limits.check_slices(nz, where, tag="dim[3]")
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    limits.check_size(
        nx * ny * nz, nx * ny * nz * itemsize, where, f"{nx} x {ny} x {nz} (dim[1..3])"
    )
    affine_ras = np.asarray(image.affine, dtype=np.float64)
    try:
        _check_affine(affine_ras)
    except ValueError as exc:
        raise InputError(f"{path}: NIfTI affine (sform/qform/pixdim) {exc}") from None
    try:
        proxy = image.dataobj
        if index:
            proxy = proxy[index + (0,) * (len(full_shape) - 4)]
        data = np.asarray(proxy, dtype=np.float32).reshape(shape)
    except Exception as exc:  # truncated data, unsupported dtype (RGB, complex)
        raise InputError(f"{path}: cannot read NIfTI data ({type(exc).__name__})") from None
    warnings: list[str] = []
    sform, qform = int(header["sform_code"]), int(header["qform_code"])
    if sform == 0 and qform == 0:
        warnings.append("no sform/qform: orientation unknown, pixdim used (RAS+ assumed)")
    affine_lps = _LPS_FROM_RAS @ affine_ras
    zooms = np.linalg.norm(affine_lps[:3, :3], axis=0)
    direction = affine_lps[:3, :3] / zooms
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        warnings.append("affine has shear: voxel axes are not perpendicular")
    non_finite = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if non_finite:
        warnings.append(f"{non_finite} voxel(s) are NaN or infinite")
    return Volume(
        array=np.ascontiguousarray(data.transpose(2, 1, 0)),
        spacing_mm=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
        origin_lps=affine_lps[:3, 3],
        direction=direction,
        modality="OT",
        meta={
            "kind": "nifti",
            "nifti_version": 2 if isinstance(image, nib.Nifti2Image) else 1,
            "n_slices": nz,
            "slice_gaps_irregular": False,
            "warnings": warnings,
            **({"n_volumes": n_volumes, "volume": volume} if n_volumes > 1 else {}),
        },
    )


def _check_affine(affine: np.ndarray) -> None:
    if affine.shape != (4, 4):
        raise ValueError(f"must be 4x4, got {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise ValueError("holds a non-finite value")
    det = float(np.linalg.det(affine[:3, :3]))
    if not math.isfinite(det) or abs(det) < 1e-12:
        raise ValueError("is not invertible (a zero voxel size?)")
