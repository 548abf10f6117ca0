"""Read a DICOM SEG back into a label map in the geometry of its reference series.

Each frame is placed on the volume slice of the source image it references (the same
geometric slice mapping `medsight.imaging.io.dicom_seg` writes with); frames whose reference is not
in the series are placed by position. Used by tests and the PACS integration to check what
came back against the NIfTI result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import SegmentationStorage

from medsight.errors import InputError
from medsight.imaging.io.dicom_seg import series_files, source_frames
from medsight.imaging.io.dicom_series import list_series
from medsight.imaging.io.read_image import read_image

#: Label Map Segmentation Storage (DICOM 2024), which pydicom 3.0 does not name.
_LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"


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
            (LABELMAP); the reference cannot be read, has another frame size or frame of
            reference; a frame lies on no slice of the reference; segments overlap (a
            label map holds one label per voxel).
    """
    path, reference = Path(path), Path(reference)
    seg = _read_seg(path)
    referenced = [
        str(item.get("SeriesInstanceUID", "")) for item in seg.get("ReferencedSeriesSequence", [])
    ]
    series = None
    if reference.is_dir():
        found = list_series(reference)
        series = next((uid for uid in referenced if uid in found), None)
    volume = read_image(reference, series=series)
    frames = source_frames(series_files(reference, series), volume)
    _, rows, columns = volume.shape
    if (int(seg.Rows), int(seg.Columns)) != (rows, columns):
        raise InputError(
            f"{path}: SEG frames are {seg.Rows}x{seg.Columns}, the reference images are "
            f"{rows}x{columns}"
        )
    reference_for = frames[0].dataset.get("FrameOfReferenceUID")
    if reference_for and seg.get("FrameOfReferenceUID") not in (None, "", reference_for):
        raise InputError(f"{path}: SEG and reference images are in different frames of reference")
    by_reference = {(str(f.dataset.get("SOPInstanceUID", "")), f.frame_number): f.z for f in frames}
    positions = [(f.position, f.z) for f in frames if f.position is not None]
    tolerance_mm = 0.25 * min(volume.spacing_mm)
    pixels = np.asarray(seg.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if seg.SegmentationType == "FRACTIONAL":
        masks = pixels.astype(np.float32) * 2 >= float(seg.MaximumFractionalValue)
    else:
        masks = pixels > 0
    shared = _first(seg, "SharedFunctionalGroupsSequence")
    per_frame = seg.get("PerFrameFunctionalGroupsSequence", [])
    label_map = np.zeros(volume.shape, dtype=np.uint16)
    for i, mask in enumerate(masks):
        item = per_frame[i] if i < len(per_frame) else None
        where = f"{path} frame {i + 1}"
        number = _frame_segment(item, shared, where)
        z = _frame_slice(item, shared, by_reference, positions, tolerance_mm, where)
        plane = label_map[z]
        clash = plane[mask]
        if np.any((clash != 0) & (clash != number)):
            other = int(clash[clash != 0][0])
            raise InputError(
                f"{path}: segments {other} and {number} overlap on slice {z}; a label map "
                "holds one label per voxel"
            )
        plane[mask] = number
    labels = {int(item.SegmentNumber): str(item.SegmentLabel) for item in seg.SegmentSequence}
    return label_map, labels


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
    positions: list[tuple[np.ndarray, int]],
    tolerance_mm: float,
    where: str,
) -> int:
    """The reference slice of one SEG frame: by source instance, else by position."""
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
    raise InputError(
        f"{where}: references no image of the reference series and lies on none of its slices"
    )
