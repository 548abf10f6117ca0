"""Read one DICOM series (a folder of single-frame slices, or one file) into a `Volume`.

Built on pydicom for parsing and decoding. The series logic is ours because no stack library
does all of it with the errors we need: slices are ordered by ImagePositionPatient projected
on the slice normal (never by file name or InstanceNumber), every slice must share the
geometry of the first, rescale slope/intercept is applied per slice, and every failure is an
`InputError` naming the file, never the patient.

Sizes are checked from the headers before any pixel array is allocated.
"""

from __future__ import annotations

import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medsight.errors import InputError
from medsight.io.volume import Volume

#: Refuse series whose decoded size would exceed this many voxels (headers can lie).
MAX_VOXELS = 1024 * 1024 * 1024
_HEADER_TAGS = [
    "SeriesInstanceUID",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceThickness",
    "Modality",
    "NumberOfFrames",
    "BitsAllocated",
    "SamplesPerPixel",
]


@dataclass
class _Slice:
    path: Path
    header: Dataset


def _read_header(path: Path) -> Dataset | None:
    """The header of a DICOM file, or None if the file is not DICOM."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError):
        return None


def _candidate_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _floats(header: Dataset, keyword: str, count: int, path: Path) -> np.ndarray:
    value = header.get(keyword)
    if value is None:
        raise InputError(f"{path}: missing {keyword}")
    try:
        numbers = np.array([float(v) for v in (value if count > 1 else [value])], dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {keyword} is not numeric") from None
    if numbers.size != count:
        raise InputError(f"{path}: {keyword} has {numbers.size} values, expected {count}")
    if not np.all(np.isfinite(numbers)):
        raise InputError(f"{path}: {keyword} holds a non-finite value")
    return numbers


def _geometry(header: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_dir, col_dir, pixel_spacing[row, col]) of one slice, validated."""
    iop = _floats(header, "ImageOrientationPatient", 6, path)
    row_dir, col_dir = iop[:3], iop[3:]
    if (
        abs(np.linalg.norm(row_dir) - 1) > 1e-3
        or abs(np.linalg.norm(col_dir) - 1) > 1e-3
        or abs(float(row_dir @ col_dir)) > 1e-3
    ):
        raise InputError(f"{path}: ImageOrientationPatient is not orthonormal")
    spacing = _floats(header, "PixelSpacing", 2, path)
    if np.any(spacing <= 0):
        raise InputError(f"{path}: PixelSpacing must be positive")
    return row_dir, col_dir, spacing


def list_series(folder: Path) -> dict[str, list[Path]]:
    """Group the DICOM files under ``folder`` by SeriesInstanceUID (non-DICOM files skipped)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in _candidate_files(folder):
        header = _read_header(path)
        if header is not None and "Rows" in header:
            groups[str(header.get("SeriesInstanceUID", ""))].append(path)
    return dict(groups)


def _decode(path: Path) -> np.ndarray:
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for broken pixel data
        raise InputError(f"{path}: cannot decode pixel data ({type(exc).__name__})") from None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise InputError(f"{path}: RescaleSlope/RescaleIntercept is not finite")
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        pixels = pixels.max() - pixels + pixels.min()
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def read_dicom_series(path: str | Path, workers: int = 4) -> Volume:
    """Read a DICOM series folder (or a single DICOM file) into a `Volume` in HU.

    Args:
        path: a folder holding exactly one image series, or one DICOM file.
        workers: threads used to decode slices (pixel decoding releases the GIL).

    Returns:
        The volume, slices ordered along the slice normal, rescale applied.

    Raises:
        InputError: the path is missing, holds no DICOM image, holds several series, or the
            slices disagree in size or geometry (a volume cannot be built from them).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        header = _read_header(path)
        if header is None:
            raise InputError(f"{path}: not a DICOM file")
        if "Rows" not in header:
            raise InputError(f"{path}: DICOM file holds no image")
        slices = [_Slice(path, header)]
    else:
        series = list_series(path)
        if not series:
            raise InputError(f"{path}: no DICOM image files in this folder")
        if len(series) > 1:
            raise InputError(
                f"{path}: folder holds {len(series)} series; pass a folder with one series"
            )
        files = next(iter(series.values()))
        slices = []
        for f in files:
            header = _read_header(f)
            assert header is not None  # listed above as DICOM
            slices.append(_Slice(f, header))
    return _assemble(path, slices, workers)


def _assemble(source: Path, slices: list[_Slice], workers: int) -> Volume:
    first = slices[0]
    rows, cols = int(first.header.Rows), int(first.header.Columns)
    if rows <= 0 or cols <= 0:
        raise InputError(f"{first.path}: Rows/Columns must be positive")
    if int(first.header.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(f"{first.path}: multi-frame DICOM is not supported by the series reader")
    if rows * cols * len(slices) > MAX_VOXELS:
        raise InputError(f"{source}: series of {len(slices)}x{rows}x{cols} voxels is too large")
    row_dir, col_dir, spacing = _geometry(first.header, first.path)
    normal = np.cross(row_dir, col_dir)
    positions = []
    for s in slices:
        if (int(s.header.Rows), int(s.header.Columns)) != (rows, cols):
            raise InputError(
                f"{s.path}: slice is {s.header.Rows}x{s.header.Columns}, "
                f"the series' first slice is {rows}x{cols}"
            )
        r, c, sp = _geometry(s.header, s.path)
        if not (np.allclose(r, row_dir, atol=1e-4) and np.allclose(c, col_dir, atol=1e-4)):
            raise InputError(f"{s.path}: ImageOrientationPatient differs from the series'")
        if not np.allclose(sp, spacing, rtol=1e-4):
            raise InputError(f"{s.path}: PixelSpacing differs from the series'")
        positions.append(_floats(s.header, "ImagePositionPatient", 3, s.path))
    distances = np.array([p @ normal for p in positions])
    order = np.argsort(distances, kind="stable")
    distances = distances[order]
    slices = [slices[i] for i in order]
    if len(slices) > 1:
        gaps = np.diff(distances)
        if np.any(gaps < 1e-3):
            dup = slices[int(np.argmin(gaps)) + 1].path
            raise InputError(f"{dup}: two slices share one ImagePositionPatient")
        slice_spacing = float(np.median(gaps))
    else:
        slice_spacing = float(first.header.get("SliceThickness", 1.0) or 1.0)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        planes = list(pool.map(lambda s: _decode(s.path), slices))
    for s, plane in zip(slices, planes, strict=True):
        if plane.shape != (rows, cols):
            raise InputError(
                f"{s.path}: decoded pixels are {plane.shape}, header says {rows}x{cols}"
            )
    array = np.stack(planes)
    direction = np.stack([row_dir, col_dir, normal], axis=1)
    meta = {
        "n_slices": len(slices),
        "slice_gaps_irregular": bool(
            len(slices) > 2 and np.ptp(np.diff(distances)) > 0.1 * slice_spacing
        ),
    }
    return Volume(
        array=array,
        spacing_mm=(slice_spacing, float(spacing[0]), float(spacing[1])),
        origin_lps=positions[order[0]],
        direction=direction,
        modality=str(first.header.get("Modality", "OT")),
        meta=meta,
    )
