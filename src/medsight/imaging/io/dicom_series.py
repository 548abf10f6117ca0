"""Read DICOM into a `Volume`: one file, a series folder, or a folder of several series.

Built on pydicom for parsing and decoding. The series logic is ours because no stack library
does all of it with the errors we need: slices are ordered by ImagePositionPatient projected
on the slice normal (never by file name or InstanceNumber), every slice must share the
geometry of the first, rescale slope/intercept is applied per slice (per frame for enhanced
multi-frame files), irregular spacing, missing slices and gantry tilt are reported as
warnings in ``Volume.meta``, and every failure is an `InputError` naming the file, never the
patient.

How a read runs, and why it is fast: one pass parses each file's header only (pydicom's
``stop_before_pixels``) and groups files by SeriesInstanceUID; every size claim is checked
against `ReadLimits` and the output array is allocated once; then a thread pool reads each
file's pixel element from its recorded offset (parsed once, never the whole file again) and
writes the rescaled float32 slice straight into its place in the output. Uncompressed data
is viewed with ``numpy.frombuffer``; compressed data is decoded by pydicom's plugins, which
release the GIL.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.io.dicom_file import (
    DicomHeader,
    attach_pixels,
    detach_pixels,
    read_dicom_header,
)
from medsight.imaging.io.dicom_frames import Frame, file_frames
from medsight.imaging.io.dicom_geometry import Plane, stack_slices
from medsight.imaging.io.dicom_pixels import decode_frames, pixel_format, to_physical
from medsight.imaging.io.dicom_tags import tag_str
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.volume import Volume

#: The default voxel limit (kept for callers of the first API; pass a `ReadLimits` instead).
MAX_VOXELS = DEFAULT_LIMITS.max_voxels
#: Pass as ``series`` to read the series with the most voxels.
LARGEST = "largest"


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a folder (no patient data)."""

    series_uid: str  # SeriesInstanceUID ("" when the files lack one)
    modality: str
    n_files: int
    n_frames: int  # frames over all files (a multi-frame file counts its frames)
    rows: int
    columns: int


@dataclass
class _Scan:
    groups: dict[str, list[DicomHeader]]
    skipped: list[str]  # "name: why" for each file that starts like DICOM but failed


def read_dicom_series(
    path: str | Path,
    workers: int = 4,
    *,
    series: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Volume:
    """Read a DICOM file, or the image series in a folder, into a `Volume`.

    Args:
        path: one DICOM file (single- or multi-frame), or a folder searched recursively.
        workers: threads that read and decode slices (decoders release the GIL).
        series: for a folder holding several series, the SeriesInstanceUID to read, or
            ``"largest"`` for the one with the most voxels. None requires exactly one.
        limits: size limits checked from the headers before anything is allocated.

    Returns:
        The volume in physical units (HU for CT), slices ordered along the slice normal;
        ``meta`` holds the PHI-free record and any warnings (see `medsight.imaging.io.volume`).

    Raises:
        InputError: the path is missing, holds no DICOM image, holds several series and
            ``series`` does not pick one, a header value is invalid (non-finite or
            non-positive spacing, non-orthonormal orientation, sizes over ``limits``), the
            slices disagree in size or geometry, or pixel data is truncated or cannot be
            decoded. The message names the file and the tag.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    warnings: list[str] = []
    if path.is_file():
        header = read_dicom_header(path, limits)
        if header is None:
            raise InputError(f"{path}: not a DICOM file")
        if header.pixel_keyword is None:
            raise InputError(f"{path}: DICOM file holds no image (no PixelData)")
        headers, n_series = [header], 1
    else:
        scan = _scan(path, limits)
        if not scan.groups:
            detail = (
                f"; {len(scan.skipped)} file(s) could not be read, e.g. {scan.skipped[0]}"
                if scan.skipped
                else ""
            )
            raise InputError(f"{path}: no DICOM image files in this folder{detail}")
        uid, headers = _choose(path, scan.groups, series, limits, warnings)
        n_series = len(scan.groups)
        if scan.skipped:
            warnings.append(
                f"{len(scan.skipped)} file(s) start like DICOM but could not be read and "
                f"were skipped; first: {scan.skipped[0]}"
            )
    volume = _assemble(path, headers, workers, limits, warnings)
    volume.meta["n_series"] = n_series
    return volume


def list_series(folder: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, list[Path]]:
    """Group the DICOM image files under ``folder`` by SeriesInstanceUID.

    Non-DICOM files, DICOM files without pixel data and files that cannot be parsed are
    skipped.

    Raises:
        InputError: the folder holds more files than ``limits.max_files``.
    """
    scan = _scan(Path(folder), limits)
    return {uid: [h.path for h in headers] for uid, headers in scan.groups.items()}


def summarise_series(folder: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> list[SeriesInfo]:
    """The image series under ``folder``, largest first (for `medsight inspect`).

    Raises:
        InputError: the folder holds more files than ``limits.max_files``.
    """
    scan = _scan(Path(folder), limits)
    infos = [_info(uid, headers, limits) for uid, headers in scan.groups.items()]
    return sorted(infos, key=lambda i: (-i.n_frames * i.rows * i.columns, i.series_uid))


def _scan(folder: Path, limits: ReadLimits) -> _Scan:
    files = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files.append(p)
            if len(files) > limits.max_files:
                raise InputError(
                    f"{folder}: folder holds more than {limits.max_files} files "
                    "(ReadLimits.max_files)"
                )
    groups: dict[str, list[DicomHeader]] = defaultdict(list)
    skipped: list[str] = []
    for p in files:
        try:
            header = read_dicom_header(p, limits)
            if header is None or header.pixel_keyword is None or "Rows" not in header.dataset:
                continue
            uid = tag_str(header.dataset, "SeriesInstanceUID", str(p))
        except InputError as exc:
            skipped.append(f"{p.name}: {str(exc).removeprefix(f'{p}: ')}")
            continue
        groups[uid].append(header)
    return _Scan(dict(groups), skipped)


def _frames_claimed(header: DicomHeader) -> int:
    try:
        return max(1, int(header.dataset.get("NumberOfFrames", 1) or 1))
    except Exception:  # validated later; for ranking series any count will do
        return 1


def _info(uid: str, headers: list[DicomHeader], limits: ReadLimits) -> SeriesInfo:
    ds = headers[0].dataset
    where = str(headers[0].path)
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    except Exception:
        rows = columns = 0
    return SeriesInfo(
        series_uid=uid,
        modality=tag_str(ds, "Modality", where, default="OT"),
        n_files=len(headers),
        n_frames=sum(_frames_claimed(h) for h in headers),
        rows=rows,
        columns=columns,
    )


def _choose(
    folder: Path,
    groups: dict[str, list[DicomHeader]],
    series: str | None,
    limits: ReadLimits,
    warnings: list[str],
) -> tuple[str, list[DicomHeader]]:
    infos = sorted(
        (_info(uid, h, limits) for uid, h in groups.items()),
        key=lambda i: (-i.n_frames * i.rows * i.columns, i.series_uid),
    )
    listing = ", ".join(f"{i.series_uid or '(no uid)'} ({i.n_frames} slices)" for i in infos[:5])
    if len(infos) > 5:
        listing += ", ..."
    if series is None:
        if len(infos) > 1:
            raise InputError(
                f"{folder}: folder holds {len(infos)} series ({listing}); pass a folder with "
                "one series, or choose one by SeriesInstanceUID or 'largest'"
            )
        return infos[0].series_uid, groups[infos[0].series_uid]
    if series == LARGEST:
        chosen = infos[0]
        if len(infos) > 1:
            warnings.append(
                f"folder holds {len(infos)} series; read the largest ({chosen.n_frames} slices)"
            )
        return chosen.series_uid, groups[chosen.series_uid]
    if series not in groups:
        raise InputError(f"{folder}: no series with SeriesInstanceUID {series} (found: {listing})")
    if len(infos) > 1:
        warnings.append(f"folder holds {len(infos)} series; read the one asked for")
    return series, groups[series]


def _assemble(
    source: Path,
    headers: list[DicomHeader],
    workers: int,
    limits: ReadLimits,
    warnings: list[str],
) -> Volume:
    where0 = str(headers[0].path)
    formats = [
        pixel_format(h.dataset, str(h.path), limits, h.pixel_keyword or "PixelData")
        for h in headers
    ]
    first = formats[0]
    colour = first.samples == 3 or first.photometric == "PALETTE COLOR"
    for h, fmt in zip(headers, formats, strict=True):
        if (fmt.rows, fmt.columns) != (first.rows, first.columns):
            raise InputError(
                f"{h.path}: slice is {fmt.rows}x{fmt.columns}, "
                f"the series' first slice is {first.rows}x{first.columns}"
            )
        if (fmt.samples == 3 or fmt.photometric == "PALETTE COLOR") != colour:
            raise InputError(f"{h.path}: colour and grey-scale slices in one series")
    n_frames = sum(f.frames for f in formats)
    if len(headers) > 1:
        limits.check_slices(n_frames, str(source), tag="slice count")
    channels = 3 if colour else 1
    limits.check_size(
        n_frames * first.rows * first.columns * channels,
        sum(f.decoded_bytes for f in formats),
        str(source),
        f"{n_frames} x {first.rows} x {first.columns} x {channels} "
        "(slices x Rows x Columns x samples)",
    )
    flat: list[tuple[int, Frame]] = []
    for k, (h, fmt) in enumerate(zip(headers, formats, strict=True)):
        file, notes = file_frames(h.dataset, fmt.frames, str(h.path))
        flat.extend((k, frame) for frame in file)
        warnings.extend(notes if len(headers) == 1 else [f"{h.path.name}: {n}" for n in notes])
    geometry = _geometry(flat, headers, warnings)
    order, origin, direction, spacing_mm, irregular = geometry
    # destination slice of each (file, frame)
    destination = np.empty(len(flat), dtype=np.int64)
    destination[order] = np.arange(len(flat))
    shape = (len(flat), first.rows, first.columns) + ((3,) if colour else ())
    array = np.empty(shape, dtype=np.float32)
    modality = tag_str(headers[0].dataset, "Modality", where0, default="OT")
    per_file: dict[int, list[tuple[Frame, int]]] = defaultdict(list)
    for i, (k, frame) in enumerate(flat):
        per_file[k].append((frame, int(destination[i])))
    syntaxes = sorted({f.transfer_syntax.name for f in formats})
    decode_warnings: list[str] = []

    def load(k: int) -> None:
        header, fmt = headers[k], formats[k]
        try:
            ds = attach_pixels(header)
            raw, extra = decode_frames(ds, fmt, str(header.path))
        finally:
            detach_pixels(header)
        decode_warnings.extend(f"{header.path.name}: {w}" for w in extra)
        for frame, dest in per_file[k]:
            slope, intercept = (1.0, 0.0) if colour else (frame.slope, frame.intercept)
            to_physical(raw[frame.index], fmt, slope, intercept, modality, array[dest])

    if workers > 1 and len(headers) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(load, range(len(headers))))
    else:
        for k in range(len(headers)):
            load(k)
    warnings.extend(sorted(decode_warnings)[:5])
    kind = (
        "dicom-series"
        if len(headers) > 1
        else ("dicom-multiframe" if first.frames > 1 else "dicom-file")
    )
    meta = {
        "kind": kind,
        "n_slices": len(flat),
        "transfer_syntax": "; ".join(syntaxes),
        "photometric": first.photometric,
        "slice_gaps_irregular": irregular,
        "warnings": warnings,
    }
    return Volume(
        array=array,
        spacing_mm=spacing_mm,
        origin_lps=origin,
        direction=direction,
        modality=modality,
        meta=meta,
    )


def _geometry(
    flat: list[tuple[int, Frame]],
    headers: list[DicomHeader],
    warnings: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float], bool]:
    """(order, origin, direction, spacing_mm (z, y, x), irregular) of all frames."""
    frames = [frame for _, frame in flat]
    n = len(frames)
    first = frames[0]
    # Orientation: all frames share one, or (a single plane only) none is given.
    with_orientation = [f for f in frames if f.row_dir is not None]
    if with_orientation:
        ref = with_orientation[0]
        assert ref.row_dir is not None and ref.col_dir is not None
        for f in frames:
            if f.row_dir is None or f.col_dir is None:
                raise InputError(f"{f.name}: missing ImageOrientationPatient")
            if not (
                np.allclose(f.row_dir, ref.row_dir, atol=1e-4)
                and np.allclose(f.col_dir, ref.col_dir, atol=1e-4)
            ):
                raise InputError(f"{f.name}: ImageOrientationPatient differs from the series'")
        row_dir, col_dir = ref.row_dir, ref.col_dir
    else:
        row_dir, col_dir = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        warnings.append("no ImageOrientationPatient: orientation unknown, identity (LPS) assumed")
    # In-plane spacing: all frames share one, or none is given (1 mm assumed).
    if first.pixel_spacing is not None:
        for f in frames:
            if f.pixel_spacing is None or not np.allclose(
                f.pixel_spacing, first.pixel_spacing, rtol=1e-4
            ):
                raise InputError(f"{f.name}: PixelSpacing differs from the series'")
        pixel = first.pixel_spacing
        if first.spacing_keyword == "ImagerPixelSpacing":
            warnings.append(
                "no PixelSpacing: ImagerPixelSpacing (at the detector, not the patient) used"
            )
    else:
        if any(f.pixel_spacing is not None for f in frames):
            raise InputError(f"{first.name}: missing PixelSpacing")
        pixel = (1.0, 1.0)
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
    plane = Plane(row_dir, col_dir, pixel)
    fallback = first.slice_spacing or 1.0
    with_position = [f for f in frames if f.position is not None]
    single_file = len(headers) == 1
    if len(with_position) == n and (with_orientation or n == 1):
        positions = np.stack([f.position for f in frames if f.position is not None])
        stack = stack_slices(positions, plane, [f.name for f in frames], fallback)
        warnings.extend(stack.warnings)
        direction = np.stack([row_dir, col_dir, stack.step_dir], axis=1)
        if n == 1 and not with_orientation:
            direction = np.eye(3)
        spacing = (stack.spacing_mm, pixel[0], pixel[1])
        return stack.order, stack.origin_lps, direction, spacing, stack.irregular
    if with_position and len(with_position) < n:
        missing = next(f for f in frames if f.position is None)
        raise InputError(f"{missing.name}: missing ImagePositionPatient")
    if with_position:
        raise InputError(f"{first.name}: missing ImageOrientationPatient")
    if n > 1 and not single_file:
        raise InputError(f"{first.name}: missing ImagePositionPatient")
    # One plane, or one multi-frame file, without positions: keep file order.
    if n > 1:
        warnings.append(
            f"no per-frame ImagePositionPatient: frames kept in file order, "
            f"{fallback:.4g} mm apart (assumed)"
        )
    if first.stack_origin is None:
        warnings.append("no ImagePositionPatient: origin assumed at 0")
    direction = np.stack([row_dir, col_dir, np.cross(row_dir, col_dir)], axis=1)
    origin = first.stack_origin if first.stack_origin is not None else np.zeros(3)
    return np.arange(n), origin, direction, (fallback, pixel[0], pixel[1]), False
