"""Tell what kind of input a path is, from its content (magic bytes), not only its name.

Kinds: ``dicom`` (a Part 10 image file), ``dicom-seg`` (a Segmentation: a label map drawn
on another series), ``dicom-sr`` (a Structured Report: findings and measurements, no
pixels), ``dicom-folder``, ``nifti`` (``.nii``/``.nii.gz``, NIfTI-1 or -2), ``png``,
``jpeg``, ``medmnist`` (``.npz``), ``segmentation-dataset`` (a folder with
``dataset.json``), ``image-manifest`` (``.csv``), ``unknown``. SEG and SR are told from
images by the SOP class in the file meta header (MediaStorageSOPClassUID), which is read
without the dataset.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from medsight.errors import InputError

IMAGE_KINDS = ("dicom", "dicom-folder", "nifti", "png", "jpeg")
COLLECTION_KINDS = ("medmnist", "segmentation-dataset", "image-manifest")
#: DICOM objects that are not images: they describe another series
DERIVED_KINDS = ("dicom-seg", "dicom-sr")
#: Segmentation Storage and Label Map Segmentation Storage (DICOM 2024)
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
#: every Structured Report storage class (Basic Text, Enhanced, Comprehensive, 3D, KOS, CAD,
#: dose reports...) lies under this root
SR_SOP_CLASS_ROOT = "1.2.840.10008.5.1.4.1.1.88."
_NIFTI1_MAGICS = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGICS = (b"n+2\x00", b"ni2\x00")


def detect_kind(path: str | Path) -> str:
    """The kind of input at ``path`` (see the module docstring).

    Raises:
        InputError: the path does not exist or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return "segmentation-dataset" if (path / "dataset.json").is_file() else "dicom-folder"
    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read file ({exc.strerror or type(exc).__name__})"
        ) from None
    name = path.name.lower()
    if head[128:132] == b"DICM":
        return _dicom_kind(path)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x1f\x8b"):
        return "nifti" if _is_nifti(_gunzip_head(path)) else "unknown"
    if _is_nifti(head):
        return "nifti"
    if head.startswith(b"PK\x03\x04") and name.endswith(".npz"):
        return "medmnist"
    if name.endswith(".csv"):
        return "image-manifest"
    return "unknown"


def _dicom_kind(path: Path) -> str:
    try:
        sop_class = str(read_file_meta_info(path).get("MediaStorageSOPClassUID", ""))
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return "dicom"  # a broken meta header: the DICOM reader says what is wrong
    if sop_class in SEG_SOP_CLASSES:
        return "dicom-seg"
    if sop_class.startswith(SR_SOP_CLASS_ROOT):
        return "dicom-sr"
    return "dicom"


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read(544)
    except (OSError, EOFError):
        return b""


def _is_nifti(head: bytes) -> bool:
    if len(head) >= 348 and head[344:348] in _NIFTI1_MAGICS:
        return int.from_bytes(head[:4], "little") == 348 or int.from_bytes(head[:4], "big") == 348
    if len(head) >= 8 and head[4:8] in _NIFTI2_MAGICS:
        return int.from_bytes(head[:4], "little") == 540 or int.from_bytes(head[:4], "big") == 540
    return False
