"""Turn uploaded bytes into a stored, de-identified input: DICOM series, NIfTI or PNG.

Only the de-identified form is ever written: each DICOM instance is parsed in memory,
screened (`quarantine_reason`: burned-in text and similar are refused with 422
``quarantined``), de-identified with the PS3.15 Basic Profile (`deidentify_dataset`, keyed
UIDs, dates removed) and then saved; NIfTI headers lose their free-text fields
(``descrip``, ``aux_file``, ``intent_name``, ``db_name``) and every extension (they can
carry a whole DICOM header); PNG and JPEG are re-encoded from their pixels alone, dropping
text chunks, EXIF and ICC data. Image sizes are checked from headers before any pixel
buffer is decoded. Files are named by position (``00001.dcm``); the client's names are
never used. The stored folder appears whole or not at all (`atomic_dir`).

The input hash recorded in jobs and the audit trail is SHA-256 over the stored
(de-identified) files, so it identifies the data without being derived from PHI.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.errors import InvalidDicomError

from medsight.imaging.io.deid import DeidPolicy, deidentify_dataset, quarantine_reason
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.runs.atomic import atomic_dir
from medsight.serve.api.errors import ApiError
from medsight.serve.settings import ServiceSettings

PNG_MAGIC, JPEG_MAGIC, GZIP_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\x1f\x8b"
NIFTI_FILE, RASTER_FILE = "image.nii.gz", "image.png"
#: a patient's record is stored as de-identified MEDS rows (`deidentified_record`)
RECORD_FILE = "events.parquet"
RECORD_KINDS = ("fhir", "meds")
#: a clinical note is stored as its de-identified text (`deidentified_text`), whatever was sent
TEXT_FILE = "note.txt"
TEXT_KINDS = ("text", "text-fhir", "text-hl7")


@dataclass(frozen=True)
class StoredInput:
    """A de-identified input on disk.

    Attributes:
        path: what a reader opens: the series folder (DICOM) or the file.
        kind: ``dicom``, ``nifti`` or ``raster``; for a patient's record ``fhir`` or ``meds``
            (what was sent; stored as MEDS rows either way); for a note ``text``,
            ``text-fhir`` or ``text-hl7`` (stored as de-identified UTF-8 text either way).
        sha256: SHA-256 over the stored files (sorted by name); for a record, over the
            de-identified record's canonical JSON; for a note, of its de-identified text.
        slices: slices (frames) in the image: 1 means a 2D input (0 for a record).
    """

    path: Path
    kind: str
    sha256: str
    slices: int


def _kind(data: bytes) -> str:
    if data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC):
        return "raster"
    if data.startswith(GZIP_MAGIC) or data[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "nifti"
    return "unknown"


def upload_kind(files: list[bytes]) -> str:
    """``dicom`` (one or more Part 10 files), ``nifti`` or ``raster`` (exactly one file).

    Raises:
        ApiError: an unknown format, or a mix / several non-DICOM files.
    """
    kinds = {_kind(f) for f in files}
    if "unknown" in kinds:
        raise ApiError(
            "unsupported_media_type",
            "upload: a file is not DICOM Part 10, NIfTI, PNG or JPEG",
        )
    if kinds == {"dicom"}:
        return "dicom"
    if len(files) == 1:
        return kinds.pop()
    raise ApiError(
        "invalid_input", "upload: send DICOM files of one series, or one NIfTI / PNG / JPEG"
    )


def _int(ds: pydicom.Dataset, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _dicom(files: list[bytes], policy: DeidPolicy, settings: ServiceSettings, out: Path) -> int:
    voxels, slices, series = 0, 0, set()
    datasets = []
    for i, data in enumerate(files, start=1):
        try:
            with pydicom_silenced():
                ds = pydicom.dcmread(io.BytesIO(data))
        except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
            raise ApiError("invalid_input", f"upload: file {i} is not readable DICOM") from None
        if "PixelData" not in ds and "FloatPixelData" not in ds:
            raise ApiError("invalid_input", f"upload: file {i} holds no image")
        frames = max(_int(ds, "NumberOfFrames", 1), 1)
        size = (
            _int(ds, "Rows", 0) * _int(ds, "Columns", 0) * frames * _int(ds, "SamplesPerPixel", 1)
        )
        voxels += size
        slices += frames
        if voxels > settings.max_voxels:
            raise ApiError(
                "payload_too_large",
                f"upload: the images hold over {settings.max_voxels} voxels",
            )
        if voxels * max(_int(ds, "BitsAllocated", 16), 8) // 8 > settings.max_decompressed_bytes:
            raise ApiError("payload_too_large", "upload: decoded pixel data over the limit")
        reason = quarantine_reason(ds)
        if reason is not None:
            raise ApiError(
                "quarantined",
                f"upload: file {i} was quarantined ({reason}); it may show patient "
                "identifiers in its pixels and is not accepted",
            )
        series.add(str(ds.get("SeriesInstanceUID", "")))
        datasets.append(ds)
    if len(series) > 1:
        raise ApiError("invalid_input", "upload: the DICOM files belong to several series")
    for i, ds in enumerate(datasets, start=1):
        clean = deidentify_dataset(ds, policy)
        with pydicom_silenced():
            clean.save_as(out / f"{i:05d}.dcm", enforce_file_format=True)
    return slices


def _gunzip(data: bytes, limit: int) -> bytes:
    out = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = out.decompress(data, limit + 1)
    except zlib.error:
        raise ApiError("invalid_input", "upload: the gzip stream is corrupt") from None
    if len(raw) > limit:
        raise ApiError("payload_too_large", "upload: the NIfTI expands past the size limit")
    return raw


def _nifti(data: bytes, settings: ServiceSettings, out: Path) -> int:
    raw = _gunzip(data, settings.max_decompressed_bytes) if data.startswith(GZIP_MAGIC) else data
    try:
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
        shape = header.get_data_shape()
    except Exception:  # nibabel raises many types for broken headers
        raise ApiError("invalid_input", "upload: the NIfTI header cannot be read") from None
    if int(np.prod(shape, dtype=np.int64)) > settings.max_voxels:
        raise ApiError(
            "payload_too_large", f"upload: the image holds over {settings.max_voxels} voxels"
        )
    try:
        image = nib.Nifti1Image.from_bytes(raw)
        array = np.asanyarray(image.dataobj)
    except Exception:
        raise ApiError("invalid_input", "upload: the NIfTI image cannot be read") from None
    clean_header = image.header.copy()
    for field in ("descrip", "aux_file", "intent_name", "db_name"):
        if field in clean_header:
            clean_header[field] = b""
    clean_header.extensions.clear()
    clean = nib.Nifti1Image(array, image.affine, clean_header)
    clean.header.extensions.clear()
    nib.save(clean, out / NIFTI_FILE)
    return int(shape[2]) if len(shape) > 2 else 1


def _raster(data: bytes, settings: ServiceSettings, out: Path) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height * 3 > settings.max_voxels:
                    raise ApiError("payload_too_large", "upload: the image is over the size limit")
                image.load()
                pixels = Image.frombytes(image.mode, image.size, image.tobytes())
    except ApiError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ApiError("invalid_input", "upload: the image cannot be decoded") from None
    pixels.save(out / RASTER_FILE, format="PNG")
    return 1


def stored_path(folder: Path, kind: str) -> Path:
    """What a reader opens for an input of ``kind`` stored in ``folder``."""
    if kind == "dicom":
        return folder
    if kind in RECORD_KINDS:
        return folder / RECORD_FILE
    if kind in TEXT_KINDS:
        return folder / TEXT_FILE
    return folder / (NIFTI_FILE if kind == "nifti" else RASTER_FILE)


def folder_digest(folder: Path) -> str:
    """SHA-256 over a stored input's files (names and contents, sorted): its input hash."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def store_deidentified(
    files: list[bytes], dest: Path, policy: DeidPolicy, settings: ServiceSettings
) -> StoredInput:
    """Check, de-identify and store ``files`` as one input in the new folder ``dest``.

    Raises:
        ApiError: unsupported, unreadable, over a limit, or quarantined (422); nothing is
            left in ``dest`` then.
    """
    kind = upload_kind(files)
    with atomic_dir(dest) as tmp:
        if kind == "dicom":
            slices = _dicom(files, policy, settings, tmp)
        elif kind == "nifti":
            slices = _nifti(files[0], settings, tmp)
        else:
            slices = _raster(files[0], settings, tmp)
    return StoredInput(
        path=stored_path(dest, kind), kind=kind, sha256=folder_digest(dest), slices=slices
    )


__all__ = ["StoredInput", "store_deidentified", "upload_kind"]
