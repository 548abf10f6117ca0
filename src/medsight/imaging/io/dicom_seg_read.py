"""Read a DICOM SEG back into a label map on the grid of the image it was drawn on.

A SEG (what PACS viewers, OHIF and 3D Slicer export annotations as) stores one binary or
fractional frame per segment and plane, each referencing the source image it was drawn on
and carrying its ImagePositionPatient. Reading one onto an image is a geometry check first:
the frame size, pixel spacing, plane orientation and frame of reference must be the
image's, and every frame must land on a slice of it, by the source instance it references
(the same slice mapping `medsight.imaging.io.dicom_seg` writes with) or else by position (a
re-exported series with new UIDs, or a NIfTI image of the same grid). Any mismatch is one
`InputError` naming the SEG and, when the SEG references another series, that series.

Label maps are ``[z, y, x]`` (see `medsight.imaging.io.volume`) and hold segment numbers
(0 is background). Used by ``medsight train --task segment`` (a SEG as the mask of a
manifest row), ``medsight inspect`` (`describe_dicom_seg`) and the PACS integration tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import SegmentationStorage

from medsight.errors import InputError
from medsight.imaging.io.dicom_seg import SourceFrame, series_files, source_frames
from medsight.imaging.io.dicom_series import list_series
from medsight.imaging.io.input_kind import SEG_SOP_CLASSES, detect_kind
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import LPS_TO_RAS, Volume

#: Label Map Segmentation Storage (DICOM 2024), which pydicom 3.0 does not name.
_LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
#: How far a SEG's plane orientation (direction cosines) or pixel spacing (relative) may
#: differ from the image's and still be the same grid: float text rounding, not a tilt.
_ORIENTATION_TOLERANCE = 1e-3
_SPACING_TOLERANCE = 1e-3


def read_dicom_seg(path: Path, reference: Path) -> tuple[np.ndarray, dict[int, str]]:
    """Read a DICOM SEG into a label map in the geometry of its reference series.

    Each frame is placed on the slice of the source image it references (SOP instance and
    frame number); a frame whose reference is not in ``reference`` (a re-exported series
    with new UIDs) is placed by its ImagePositionPatient instead.

    Args:
        path: a BINARY or FRACTIONAL SEG file (fractional values are thresholded at half
            the maximum).
        reference: the DICOM file or folder of the segmented series; if the folder holds
            several series, the one the SEG references is read.

    Returns:
        The label map, uint16 ``[z, y, x]`` in the geometry of ``read_image(reference)``,
        and ``{segment number: SegmentLabel}``.

    Raises:
        InputError: ``path`` is not a readable SEG or is of an unsupported type
            (LABELMAP); the reference cannot be read or its grid is not the SEG's (frame
            size, pixel spacing, orientation, frame of reference); a frame lies on no slice
            of the reference; segments overlap (a label map holds one label per voxel).
    """
    path, reference = Path(path), Path(reference)
    seg = _read_seg(path)
    series = None
    if reference.is_dir():
        found = list_series(reference)
        series = next((uid for uid in _referenced_series(seg) if uid in found), None)
    volume = read_image(reference, series=series)
    frames = source_frames(series_files(reference, series), volume)
    return _place(seg, path, volume, frames, reference), _segment_labels(seg)


def read_dicom_seg_on_image(
    path: Path, image: Path, volume: Volume
) -> tuple[np.ndarray, dict[int, str]]:
    """Read a DICOM SEG onto an image already read from ``image`` (a training case's mask).

    Args:
        path: a BINARY or FRACTIONAL SEG file.
        image: the path ``volume`` was read from: a DICOM file or single-series folder (the
            frames are matched by the instances they reference, else by position), or a
            NIfTI of the same grid (matched by position).
        volume: ``read_image(image)``.

    Returns:
        The label map of segment numbers, uint16 ``[z, y, x]`` on ``volume``'s grid, and
        ``{segment number: SegmentLabel}``.

    Raises:
        InputError: as `read_dicom_seg`: ``path`` is not a readable BINARY/FRACTIONAL SEG,
            or it was not drawn on this image's grid (the message says how it differs and
            which series the SEG references).
    """
    path, image = Path(path), Path(image)
    seg = _read_seg(path)
    frames: list[SourceFrame] = []
    if detect_kind(image) in ("dicom", "dicom-folder"):
        frames = source_frames(series_files(image, None), volume)
    return _place(seg, path, volume, frames, image), _segment_labels(seg)


def dicom_seg_segments(path: Path) -> dict[int, str]:
    """``{SegmentNumber: SegmentLabel}`` of a SEG, from its header (no pixel data read).

    Raises:
        InputError: ``path`` is not a DICOM SEG, or it describes no segment.
    """
    ds = _read_seg_header(Path(path))
    return _segment_labels(ds)


def describe_dicom_seg(path: Path) -> dict[str, Any]:
    """What a SEG holds, from its header: segments, referenced series, frames, geometry.

    Returns:
        A JSON-ready record (``kind`` ``dicom-seg``): ``segmentation_type``, ``segments``
        (number, label, category, type, algorithm, frames drawn), ``n_frames``,
        ``frame_size`` (rows, columns), ``pixel_spacing_mm`` (row, column),
        ``slice_thickness_mm``, ``orientation`` (code of the plane axes, as for images),
        ``n_planes`` and ``extent_mm`` (distinct frame positions and their span along the
        plane normal), ``frame_of_reference_uid``, ``study_uid``, ``referenced_series``
        (SeriesInstanceUID and instance count) and ``warnings``. No patient data.

    Raises:
        InputError: ``path`` is not a DICOM SEG or has no SegmentSequence.
    """
    path = Path(path)
    ds = _read_seg_header(path)
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence", []))
    counts: Counter[int] = Counter()
    positions = []
    for item in per_frame:
        ident = _first(item, "SegmentIdentificationSequence") or _first(
            shared, "SegmentIdentificationSequence"
        )
        if ident is not None and "ReferencedSegmentNumber" in ident:
            counts[int(ident.ReferencedSegmentNumber)] += 1
        plane = _first(item, "PlanePositionSequence") or _first(shared, "PlanePositionSequence")
        if plane is not None and "ImagePositionPatient" in plane:
            positions.append([float(v) for v in plane.ImagePositionPatient])
    orientation = _orientation(ds)
    measures = _first(shared, "PixelMeasuresSequence") or _first(
        per_frame[0] if per_frame else None, "PixelMeasuresSequence"
    )
    spacing = (
        [float(v) for v in measures.PixelSpacing]
        if measures and "PixelSpacing" in measures
        else None
    )
    thickness = (
        float(measures.SliceThickness)
        if measures is not None and measures.get("SliceThickness") not in (None, "")
        else None
    )
    n_planes, extent = None, None
    if positions and orientation is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        along = np.round(np.asarray(positions) @ normal, 3)
        n_planes = len(np.unique(along))
        extent = [float(along.min()), float(along.max())]
    segments = []
    for item in ds.SegmentSequence:
        number = int(item.SegmentNumber)
        algorithm = _first(item, "SegmentationAlgorithmIdentificationSequence")
        segments.append(
            {
                "number": number,
                "label": str(item.get("SegmentLabel", "")),
                "category": _code_meaning(item, "SegmentedPropertyCategoryCodeSequence"),
                "type": _code_meaning(item, "SegmentedPropertyTypeCodeSequence"),
                "algorithm_type": str(item.get("SegmentAlgorithmType", "")),
                "algorithm": str(algorithm.get("AlgorithmName", "")) if algorithm else "",
                "n_frames": counts.get(number, 0),
            }
        )
    warnings = []
    if str(ds.SOPClassUID) == _LABEL_MAP_SEGMENTATION_STORAGE:
        warnings.append("label-map SEG: medsight trains on BINARY and FRACTIONAL SEGs only")
    if not per_frame:
        warnings.append("no frames: every segment is empty")
    empty = [s["label"] or str(s["number"]) for s in segments if per_frame and not s["n_frames"]]
    if empty:
        warnings.append(f"segment(s) {', '.join(map(repr, empty))} have no frames (empty)")
    return {
        "path": str(path),
        "kind": "dicom-seg",
        "modality": "SEG",
        "segmentation_type": str(ds.get("SegmentationType", "")),
        "segments": segments,
        "n_frames": int(ds.get("NumberOfFrames", len(per_frame)) or 0),
        "frame_size": [int(ds.Rows), int(ds.Columns)] if "Rows" in ds else None,
        "pixel_spacing_mm": spacing,
        "slice_thickness_mm": thickness,
        "orientation": _orientation_code(orientation) if orientation is not None else "",
        "n_planes": n_planes,
        "extent_mm": extent,
        "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "")),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "referenced_series": [
            {
                "series_uid": str(item.get("SeriesInstanceUID", "")),
                "n_instances": len(item.get("ReferencedInstanceSequence", [])),
            }
            for item in ds.get("ReferencedSeriesSequence", [])
        ],
        "warnings": warnings,
    }


def _place(
    seg: hd.seg.Segmentation, path: Path, volume: Volume, frames: list[SourceFrame], image: Path
) -> np.ndarray:
    """The SEG's frames as a label map on ``volume``'s grid, after checking the grid."""
    referenced = _referenced_series(seg)
    image_series = str(frames[0].dataset.get("SeriesInstanceUID", "")) if frames else ""
    other = (
        f" (it references series {referenced[0]}, the image is {image_series})"
        if referenced and image_series and image_series not in referenced
        else ""
    )
    where = f"{path}: SEG does not fit {image.name}"
    _, rows, columns = volume.shape
    if (int(seg.Rows), int(seg.Columns)) != (rows, columns):
        raise InputError(
            f"{where}: its frames are {seg.Rows}x{seg.Columns}, the image's slices "
            f"{rows}x{columns}{other}"
        )
    reference_for = frames[0].dataset.get("FrameOfReferenceUID") if frames else None
    if reference_for and seg.get("FrameOfReferenceUID") not in (None, "", reference_for):
        raise InputError(f"{where}: another frame of reference{other}")
    shared = _first(seg, "SharedFunctionalGroupsSequence")
    per_frame = seg.get("PerFrameFunctionalGroupsSequence", [])
    _check_plane_grid(seg, shared, volume, where, other)
    by_reference = {(str(f.dataset.get("SOPInstanceUID", "")), f.frame_number): f.z for f in frames}
    if frames:
        positions = [(f.position, f.z) for f in frames if f.position is not None]
    else:
        affine = volume.affine_lps()
        positions = [
            (affine[:3, :3] @ [0.0, 0.0, z] + affine[:3, 3], z) for z in range(volume.shape[0])
        ]
    tolerance_mm = 0.25 * min(volume.spacing_mm)
    pixels = np.asarray(seg.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if seg.SegmentationType == "FRACTIONAL":
        masks = pixels.astype(np.float32) * 2 >= float(seg.MaximumFractionalValue)
    else:
        masks = pixels > 0
    label_map = np.zeros(volume.shape, dtype=np.uint16)
    for i, mask in enumerate(masks):
        item = per_frame[i] if i < len(per_frame) else None
        number = _frame_segment(item, shared, f"{path} frame {i + 1}")
        z = _frame_slice(item, shared, by_reference, positions, tolerance_mm)
        if z is None:
            raise InputError(
                f"{where}: frame {i + 1} references no image of it and lies on none of its "
                f"slices{other}"
            )
        plane = label_map[z]
        clash = plane[mask]
        if np.any((clash != 0) & (clash != number)):
            first = int(clash[clash != 0][0])
            raise InputError(
                f"{path}: segments {first} and {number} overlap on slice {z}; a label map "
                "holds one label per voxel"
            )
        plane[mask] = number
    return label_map


def _check_plane_grid(
    seg: Dataset, shared: Dataset | None, volume: Volume, where: str, other: str
) -> None:
    """Refuse a SEG whose pixel spacing or plane orientation is not the image's."""
    orientation = _orientation(seg)
    if orientation is not None:
        image_axes = np.concatenate([volume.direction[:, 0], volume.direction[:, 1]])
        if not np.allclose(orientation, image_axes, atol=_ORIENTATION_TOLERANCE):
            raise InputError(
                f"{where}: its planes are oriented {_orientation_code(orientation)}, the "
                f"image's {_orientation_code(image_axes)} (flipped or another plane){other}"
            )
    per_frame = seg.get("PerFrameFunctionalGroupsSequence", [])
    measures = _first(shared, "PixelMeasuresSequence") or _first(
        per_frame[0] if per_frame else None, "PixelMeasuresSequence"
    )
    if measures is not None and "PixelSpacing" in measures:
        spacing = np.array([float(v) for v in measures.PixelSpacing])
        image_spacing = np.array(volume.spacing_mm[1:])
        if not np.allclose(spacing, image_spacing, rtol=_SPACING_TOLERANCE, atol=1e-4):
            raise InputError(
                f"{where}: its pixel spacing is {_mm(spacing)} mm, the image's "
                f"{_mm(image_spacing)} mm{other}"
            )


def _mm(values: np.ndarray) -> str:
    return " x ".join(f"{v:.4g}" for v in values)


def _orientation(ds: Dataset) -> np.ndarray | None:
    """The SEG's ImageOrientationPatient (shared, else of its first frame), or None."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    plane = _first(_first(ds, "SharedFunctionalGroupsSequence"), "PlaneOrientationSequence") or (
        _first(per_frame[0], "PlaneOrientationSequence") if per_frame else None
    )
    if plane is None or "ImageOrientationPatient" not in plane:
        return None
    return np.array([float(v) for v in plane.ImageOrientationPatient])


def _orientation_code(orientation: np.ndarray) -> str:
    """Three letters: where the row, column and normal axes point (RAS+ codes, as images)."""
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ np.column_stack([row, column, np.cross(row, column)])
    return "".join(str(c) for c in nib.orientations.aff2axcodes(affine))


def _referenced_series(seg: Dataset) -> list[str]:
    return [
        str(item.get("SeriesInstanceUID", "")) for item in seg.get("ReferencedSeriesSequence", [])
    ]


def _segment_labels(ds: Dataset) -> dict[int, str]:
    return {
        int(item.SegmentNumber): str(item.get("SegmentLabel", "")) for item in ds.SegmentSequence
    }


def _code_meaning(item: Dataset, keyword: str) -> str:
    code = _first(item, keyword)
    return str(code.get("CodeMeaning", "")) if code is not None else ""


def _read_seg_header(path: Path) -> Dataset:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as DICOM") from exc
    if str(ds.get("SOPClassUID", "")) not in SEG_SOP_CLASSES:
        raise InputError(f"{path}: not a DICOM SEG (Segmentation Storage)")
    if not ds.get("SegmentSequence"):
        raise InputError(f"{path}: malformed DICOM SEG (no SegmentSequence)")
    return ds


def _read_seg(path: Path) -> hd.seg.Segmentation:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as DICOM") from exc
    sop_class = ds.get("SOPClassUID")
    if sop_class == _LABEL_MAP_SEGMENTATION_STORAGE:
        raise InputError(
            f"{path}: label-map DICOM SEG is not supported yet (BINARY and FRACTIONAL are)"
        )
    if sop_class != SegmentationStorage:
        raise InputError(f"{path}: not a DICOM SEG (Segmentation Storage)")
    try:
        return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except (AttributeError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: malformed DICOM SEG ({type(exc).__name__})") from exc


def _first(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    sequence = ds.get(keyword)
    return sequence[0] if sequence else None


def _frame_segment(item: Dataset | None, shared: Dataset | None, where: str) -> int:
    ident = _first(item, "SegmentIdentificationSequence") or _first(
        shared, "SegmentIdentificationSequence"
    )
    if ident is None or "ReferencedSegmentNumber" not in ident:
        raise InputError(f"{where}: no SegmentIdentificationSequence")
    return int(ident.ReferencedSegmentNumber)


def _frame_slice(
    item: Dataset | None,
    shared: Dataset | None,
    by_reference: dict[tuple[str, int], int],
    positions: Sequence[tuple[np.ndarray, int]],
    tolerance_mm: float,
) -> int | None:
    """The image slice of one SEG frame: by source instance, else by position, else None."""
    for group in (item, shared):
        for derivation in group.get("DerivationImageSequence", []) if group else []:
            for src in derivation.get("SourceImageSequence", []):
                numbers = src.get("ReferencedFrameNumber", 1)
                number = int(numbers[0] if isinstance(numbers, Sequence) else numbers)
                key = (str(src.get("ReferencedSOPInstanceUID", "")), number)
                if key in by_reference:
                    return by_reference[key]
    plane = _first(item, "PlanePositionSequence") or _first(shared, "PlanePositionSequence")
    if plane is not None and "ImagePositionPatient" in plane and positions:
        position = np.array([float(v) for v in plane.ImagePositionPatient])
        distances = [float(np.linalg.norm(p - position)) for p, _ in positions]
        k = int(np.argmin(distances))
        if distances[k] <= tolerance_mm:
            return positions[k][1]
    return None
