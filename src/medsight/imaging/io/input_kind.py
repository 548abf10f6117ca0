"""Tell what kind of input a path is, from its content (magic bytes), not only its name.

Kinds: ``dicom`` (a Part 10 file), ``dicom-folder``, ``nifti`` (``.nii``/``.nii.gz``,
NIfTI-1 or -2), ``png``, ``jpeg``, ``medmnist`` (``.npz``), ``segmentation-dataset`` (a
folder with ``dataset.json``), ``image-manifest`` (``.csv``), ``unknown``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from medsight.errors import InputError

IMAGE_KINDS = ("dicom", "dicom-folder", "nifti", "png", "jpeg")
COLLECTION_KINDS = ("medmnist", "segmentation-dataset", "image-manifest")
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
        return "dicom"
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
