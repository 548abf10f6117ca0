"""Per-frame geometry and rescale of one DICOM file, single-frame or multi-frame.

A classic image (CT Image Storage, MR Image Storage, ...) is one frame whose geometry is in
top-level tags. An enhanced multi-frame image (Enhanced CT/MR, SEG, ...) keeps it in
functional groups: each frame's PerFrameFunctionalGroupsSequence item overrides the
SharedFunctionalGroupsSequence item, and both hold PlanePositionSequence,
PlaneOrientationSequence, PixelMeasuresSequence and PixelValueTransformationSequence. An
RT Dose grid gives one ImagePositionPatient and a GridFrameOffsetVector along the normal.
`file_frames` turns all three into the same list of `Frame` records, so one assembly step
(`medsight.imaging.io.dicom_series`) orders and checks frames from any number of files alike.

Every value is validated as it is read (`medsight.imaging.io.dicom_tags`): a present but broken
spacing, orientation or rescale is an `InputError` naming the keyword, never a NaN in the
affine. Absent geometry is `None`, and the assembly decides whether it can do without.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from medsight.errors import InputError
from medsight.imaging.io.dicom_geometry import optional_spacing, orientation, pixel_spacing
from medsight.imaging.io.dicom_tags import first_item, tag_float, tag_floats, tag_value


@dataclass(frozen=True)
class Frame:
    """One plane of pixels and what its header says about it (LPS mm)."""

    index: int  # frame index within its file, 0-based
    name: str  # for messages: the path, plus "frame N" in a multi-frame file
    position: np.ndarray | None  # ImagePositionPatient
    row_dir: np.ndarray | None
    col_dir: np.ndarray | None
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns)
    spacing_keyword: str  # tag the pixel spacing came from ("" if none)
    slice_spacing: float | None  # SpacingBetweenSlices, else SliceThickness
    slope: float
    intercept: float
    stack_origin: np.ndarray | None = None  # a multi-frame file's one top-level position


def file_frames(ds: Dataset, n_frames: int, where: str) -> tuple[list[Frame], list[str]]:
    """The frames of one file with their geometry, in file order.

    Args:
        ds: the file's header.
        n_frames: NumberOfFrames, already validated.
        where: the path, for messages.

    Returns:
        One `Frame` per frame, and warnings (per-frame tags describing more frames than
        NumberOfFrames: the first ones are used, as a file cut down from a larger one has).

    Raises:
        InputError: a geometry or rescale tag is present but invalid, or the functional
            groups disagree with NumberOfFrames.
    """
    warnings: list[str] = []
    shared = first_item(ds, "SharedFunctionalGroupsSequence", where)
    per_frame = tag_value(ds, "PerFrameFunctionalGroupsSequence", where)
    if per_frame is not None:
        if isinstance(per_frame, str | bytes) or not hasattr(per_frame, "__len__"):
            raise InputError(f"{where}: PerFrameFunctionalGroupsSequence is not a sequence")
        if len(per_frame) < n_frames:
            raise InputError(
                f"{where}: PerFrameFunctionalGroupsSequence has {len(per_frame)} items, "
                f"NumberOfFrames is {n_frames}"
            )
        if len(per_frame) > n_frames:
            warnings.append(
                f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} "
                "frame(s); the first are used"
            )
    frames: list[Frame] = []
    first_position: np.ndarray | None = None
    grid = _grid_offsets(ds, n_frames, where, warnings)
    for i in range(n_frames):
        name = where if n_frames == 1 else f"{where} frame {i + 1}"
        item = per_frame[i] if per_frame is not None else None
        if item is not None and not isinstance(item, Dataset):
            raise InputError(f"{where}: PerFrameFunctionalGroupsSequence is not a sequence")
        plane = _group(item, shared, "PlanePositionSequence", name) or ds
        orient = _group(item, shared, "PlaneOrientationSequence", name) or ds
        measures = _group(item, shared, "PixelMeasuresSequence", name) or ds
        values = _group(item, shared, "PixelValueTransformationSequence", name) or ds
        row_dir = col_dir = None
        if tag_value(orient, "ImageOrientationPatient", name) is not None:
            row_dir, col_dir = orientation(orient, name)
        position = None
        if tag_value(plane, "ImagePositionPatient", name) is not None:
            position = tag_floats(plane, "ImagePositionPatient", 3, name)
        if n_frames > 1 and plane is ds and grid is None:
            # One top-level position for many frames (NM, US, classic multi-frame) says
            # where the first frame is, not where the others are.
            first_position, position = position, None
        if grid is not None and position is not None:
            if row_dir is None or col_dir is None:
                raise InputError(f"{where}: GridFrameOffsetVector needs ImageOrientationPatient")
            position = position + grid[i] * np.cross(row_dir, col_dir)
        spacing, keyword = _pixel_spacing(measures, ds, name)
        slice_spacing = optional_spacing(measures, "SpacingBetweenSlices", name)
        if slice_spacing is None:
            slice_spacing = optional_spacing(measures, "SliceThickness", name)
        slope, intercept = rescale(values, name)
        frames.append(
            Frame(
                i,
                name,
                position,
                row_dir,
                col_dir,
                spacing,
                keyword,
                slice_spacing,
                slope,
                intercept,
                first_position,
            )
        )
    return frames, warnings


def rescale(item: Dataset, where: str) -> tuple[float, float]:
    """(slope, intercept) from RescaleSlope/RescaleIntercept (and DoseGridScaling for RT Dose).

    Raises:
        InputError: a value is non-numeric or non-finite, or the slope is zero (it would
            erase the image).
    """
    slope = tag_float(item, "RescaleSlope", where, default=1.0)
    intercept = tag_float(item, "RescaleIntercept", where, default=0.0)
    slope *= tag_float(item, "DoseGridScaling", where, default=1.0)
    if slope == 0.0:
        raise InputError(f"{where}: RescaleSlope (or DoseGridScaling) is zero")
    return slope, intercept


def _group(
    item: Dataset | None, shared: Dataset | None, keyword: str, where: str
) -> Dataset | None:
    """The functional group ``keyword`` for one frame: its own, else the shared one."""
    if item is not None:
        own = first_item(item, keyword, where)
        if own is not None:
            return own
    return first_item(shared, keyword, where) if shared is not None else None


def _pixel_spacing(
    measures: Dataset, ds: Dataset, where: str
) -> tuple[tuple[float, float] | None, str]:
    for source, keyword in ((measures, "PixelSpacing"), (ds, "ImagerPixelSpacing")):
        if tag_value(source, keyword, where) is not None:
            return pixel_spacing(source, where, keyword), keyword
    return None, ""


def _grid_offsets(ds: Dataset, n_frames: int, where: str, warnings: list[str]) -> np.ndarray | None:
    """Offsets (mm) of each frame from the first along the normal, from GridFrameOffsetVector.

    The first value is 0 (relative offsets) or the first frame's own coordinate (absolute);
    subtracting it gives relative offsets in both cases (PS3.3 C.8.8.3.2).
    """
    value = tag_value(ds, "GridFrameOffsetVector", where)
    if value is None:
        return None
    count = len(value) if hasattr(value, "__len__") and not isinstance(value, str) else 1
    if count > n_frames:
        warnings.append(
            f"GridFrameOffsetVector has {count} values for {n_frames} frame(s); the first are used"
        )
    offsets = tag_floats(ds, "GridFrameOffsetVector", max(count, n_frames), where)[:n_frames]
    return offsets - offsets[0]
