"""One call that reads any single image medsight supports into a `Volume`.

DICOM (a file, a series folder, a folder of several series, multi-frame), NIfTI-1/2, PNG
and JPEG all come back as the same type: a float32 ``[z, y, x]`` (or ``[z, y, x, 3]``)
array with its geometry (``affine_ras()``: voxel -> RAS+ mm), spacing, modality and a
PHI-free ``meta`` record with warnings (see `medsight.imaging.io.volume`). Collections (MedMNIST
``.npz``, Decathlon/nnU-Net folders, manifest CSVs) hold many images, and DICOM SEG and SR
files describe another series; they have their own readers, named in the error a user gets
for passing one here.
"""

from __future__ import annotations

from pathlib import Path

from medsight.errors import InputError
from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.io.input_kind import detect_kind
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.nifti import read_nifti
from medsight.imaging.io.raster_image import read_raster_image
from medsight.imaging.io.volume import Volume

_COLLECTION_HINTS = {
    "medmnist": "a MedMNIST archive holds many images: read it with "
    "medsight.imaging.io.medmnist.read_medmnist",
    "segmentation-dataset": "a Decathlon/nnU-Net dataset folder holds many images: read it "
    "with medsight.imaging.io.segmentation_dataset.read_segmentation_dataset",
    "image-manifest": "a manifest lists many images: read it with "
    "medsight.imaging.io.image_manifest.read_image_manifest",
    "dicom-seg": "a DICOM SEG is a label map drawn on another series, not an image: list it "
    "as the mask of that series (manifest column 'mask') or describe it with `medsight inspect`",
    "dicom-sr": "a DICOM SR holds findings and measurements, not an image: describe it with "
    "`medsight inspect`",
}


def read_image(
    path: str | Path,
    *,
    series: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    workers: int = 4,
    volume: int | None = None,
) -> Volume:
    """Read one image (any supported kind) into a `Volume`.

    Args:
        path: a DICOM file or folder, a NIfTI file, a PNG or a JPEG.
        series: for a DICOM folder with several series, the SeriesInstanceUID to read or
            ``"largest"``; None requires exactly one series.
        limits: size limits checked from headers before anything is allocated.
        workers: threads that decode DICOM slices.
        volume: for a 4D NIfTI (channels or time points), the index of the volume to read;
            None requires a 3D image.

    Returns:
        The image; ``volume.warnings`` lists anything assumed or odd.

    Raises:
        InputError: the path is missing, of an unknown kind, a collection (the message names
            its reader), ``volume`` is given for anything but a NIfTI, or its reader refused
            it (see `read_dicom_series`, `read_nifti`, `read_raster_image`).
    """
    path = Path(path)
    kind = detect_kind(path)
    if volume is not None and kind not in ("nifti", *_COLLECTION_HINTS):
        raise InputError(f"{path}: {kind}, not a 4D NIfTI: it has no volumes to pick (--volume)")
    if kind in ("dicom", "dicom-folder"):
        return read_dicom_series(path, workers=workers, series=series, limits=limits)
    if kind == "nifti":
        return read_nifti(path, limits, volume=volume)
    if kind in ("png", "jpeg"):
        return read_raster_image(path, limits)
    if kind in _COLLECTION_HINTS:
        raise InputError(f"{path}: {_COLLECTION_HINTS[kind]}")
    raise InputError(
        f"{path}: not a recognised image (DICOM with a DICM prefix, NIfTI, PNG or JPEG)"
    )
