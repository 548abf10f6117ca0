"""Write a heatmap overlay of one source slice as a DICOM Secondary Capture image.

The capture goes back to the hospital PACS beside the classification report
(`medsight.imaging.io.dicom_sr`), so it is filed in the source's study: same StudyInstanceUID, the
patient and study modules copied from the source, a new series. It names the slice it was
made from in SourceImageSequence (purpose: DCM 121322 "Source image for image processing
operation"; ReferencedFrameNumber for a multi-frame source) and says what it is in
DerivationDescription, ImageType DERIVED/SECONDARY and ConversionType WSD (made on a
workstation). It carries pixels only: BurnedInAnnotation is NO, and the disclaimer travels
in ImageComments rather than in the image.

An overlay is an RGB array ``[row, column, channel]`` of uint8 on the grid of the slice it
is drawn over (same Rows and Columns), so the capture can take the slice's PixelSpacing and
PatientOrientation (letters from its ImageOrientationPatient, most significant first) and a
viewer shows it the right way up at the right size. A slice is picked by its index in
``read_image(source)`` (slices ordered along the normal, never by file name) or by its
SOPInstanceUID.

highdicom builds the SC image; what is ours is choosing and checking the slice, checking
the overlay, the derivation attributes and determinism: UIDs derive from the source slice
and the overlay's bytes, and the dates are the source's (or the caller's), never the wall
clock, so the same inputs give a byte-identical file.
"""

from __future__ import annotations

import datetime
import hashlib
from copy import deepcopy
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DA, TM

from medsight import __version__
from medsight.errors import InputError
from medsight.imaging.io.ct_writer import deterministic_uid
from medsight.imaging.io.derived_headers import content_datetime_of, drop_wall_clock, fill_type2
from medsight.imaging.io.dicom_frames import file_frames
from medsight.imaging.io.dicom_seg import series_files, source_frames
from medsight.imaging.io.dicom_sr import (
    DISCLAIMER,
    check_long_string,
    source_headers,
)
from medsight.imaging.io.read_image import read_image
from medsight.runs.atomic import atomic_path

#: Patient-orientation letter for the positive direction of each LPS axis, and its opposite.
_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))
#: A direction component smaller than this does not get a letter (oblique planes get two or
#: three letters, most significant first).
_LETTER_THRESHOLD = 1e-3


def write_heatmap_capture(
    source: Path,
    overlay_rgb: np.ndarray,
    out: Path,
    *,
    slice_index: int | None = None,
    sop_instance_uid: str | None = None,
    description: str = "medsight AI heatmap overlay",
    series: str | None = None,
    series_number: int = 903,
    content_datetime: datetime.datetime | None = None,
) -> Path:
    """Write ``overlay_rgb`` as a Secondary Capture of one slice of the series at ``source``.

    Args:
        source: the DICOM file or series folder the heatmap was computed from.
        overlay_rgb: the heatmap drawn over the slice, ``[row, column, RGB]`` uint8 with the
            slice's Rows and Columns. It must carry no text (BurnedInAnnotation is NO).
        out: the file to write (replaced whole, never left half-written).
        slice_index: the slice's index in ``read_image(source)`` (0-based, along the
            normal). Give this or ``sop_instance_uid``.
        sop_instance_uid: the SOPInstanceUID of a single-frame source slice.
        description: SeriesDescription of the new series.
        series: for a folder holding several series, the SeriesInstanceUID that was used
            (or ``"largest"``).
        series_number: SeriesNumber of the new series.
        content_datetime: ContentDate/Time of the capture; None takes the source's study
            date and time, which keeps the output a function of its inputs.

    Returns:
        ``out``.

    Raises:
        InputError: ``source`` cannot be read, neither or both of ``slice_index`` and
            ``sop_instance_uid`` are given or they name no slice, the overlay is not a
            uint8 ``(Rows, Columns, 3)`` array, the slice has no orientation, the
            description or series number does not fit DICOM, or highdicom refuses the
            source. Nothing is written then.
    """
    source, out = Path(source), Path(out)
    check_long_string(description, "description", out)
    if not 1 <= series_number < 2**31:
        raise InputError(f"{out}: series number {series_number} is not in 1..2^31-1")
    if (slice_index is None) == (sop_instance_uid is None):
        raise InputError(f"{out}: give exactly one of slice_index and sop_instance_uid")
    if slice_index is not None:
        ref, frame_number = _slice_by_index(source, series, slice_index)
    else:
        ref, frame_number = _slice_by_uid(source, series, str(sop_instance_uid))
    rows, columns = int(ref.Rows), int(ref.Columns)
    overlay = _check_overlay(overlay_rgb, rows, columns, out)
    n_frames = _frames(ref, source)
    frame = file_frames(ref, n_frames, str(source))[0][frame_number - 1]
    orientation = _orientation(ref, frame.row_dir, frame.col_dir, source)
    day, time = content_datetime_of(ref, content_datetime, source)
    digest = hashlib.sha256()
    digest.update(repr((str(ref.SOPInstanceUID), frame_number, overlay.shape)).encode())
    digest.update(repr((description, series_number, day, time)).encode())
    digest.update(overlay.tobytes())
    series_uid = deterministic_uid("medsight-sc", str(ref.SeriesInstanceUID), digest.hexdigest())
    try:
        capture = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=ref,
            pixel_array=overlay,
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=series_uid,
            series_number=series_number,
            sop_instance_uid=deterministic_uid(series_uid, "instance"),
            instance_number=1,
            manufacturer="medsight",
            pixel_spacing=frame.pixel_spacing,  # type: ignore[arg-type]  # mm, typed int there
            # highdicom takes one letter per axis; oblique letters are written below.
            patient_orientation=(orientation[0][0], orientation[1][0]),
            transfer_syntax_uid=ExplicitVRLittleEndian,
            series_description=description,
            manufacturer_model_name="medsight",
            software_versions=__version__,
            content_date=day,
            content_time=time,
            series_date=day,
            series_time=time,
            specific_character_set=ref.get("SpecificCharacterSet"),
        )
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{source}: highdicom cannot encode a secondary capture of this slice: {reason}"
        ) from exc
    # from_ref_dataset copies the Type 1/2 patient and study attributes; copy the modules
    # whole (age, study description, ...) as the SR does.
    capture.copy_patient_and_study_information(ref)
    drop_wall_clock(capture, day, time)
    capture.PatientOrientation = list(orientation)
    capture.DateOfSecondaryCapture = DA(day)
    capture.TimeOfSecondaryCapture = TM(time)
    capture.ConversionType = "WSD"
    capture.BurnedInAnnotation = "NO"
    capture.DerivationDescription = (
        "AI heatmap overlay: model attribution colours drawn by medsight over the referenced "
        "source image"
    )
    capture.ImageComments = DISCLAIMER
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = ref.SOPClassUID
    referenced.ReferencedSOPInstanceUID = ref.SOPInstanceUID
    if n_frames > 1:
        referenced.ReferencedFrameNumber = frame_number
    purpose = hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    referenced.PurposeOfReferenceCodeSequence = [purpose]
    capture.SourceImageSequence = [referenced]
    with atomic_path(out) as tmp:
        capture.save_as(tmp, enforce_file_format=True)
    return out


def _slice_by_index(source: Path, series: str | None, slice_index: int) -> tuple[Dataset, int]:
    volume = read_image(source, series=series)
    n = volume.shape[0]
    if isinstance(slice_index, bool) or not isinstance(slice_index, int | np.integer):
        raise InputError(f"{source}: slice_index must be an integer, not {slice_index!r}")
    if not 0 <= slice_index < n:
        raise InputError(f"{source}: slice_index {slice_index} is not in 0..{n - 1}")
    frames = source_frames(series_files(source, series), volume)
    (chosen,) = [f for f in frames if f.z == slice_index]
    return _with_type2(chosen.dataset), chosen.frame_number


def _slice_by_uid(source: Path, series: str | None, uid: str) -> tuple[Dataset, int]:
    matches = [ds for ds in source_headers(source, series) if str(ds.SOPInstanceUID) == uid]
    if not matches:
        raise InputError(f"{source}: no instance with SOPInstanceUID {uid} in the series")
    ref = matches[0]
    n_frames = _frames(ref, source)
    if n_frames > 1:
        raise InputError(
            f"{source}: instance {uid} holds {n_frames} frames; pick one by slice_index"
        )
    return ref, 1


def _frames(ds: Dataset, where: Path) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: NumberOfFrames is not a number") from exc


def _with_type2(ds: Dataset) -> Dataset:
    return fill_type2(deepcopy(ds))


def _check_overlay(overlay: np.ndarray, rows: int, columns: int, where: Path) -> np.ndarray:
    array = np.asarray(overlay)
    if array.dtype != np.uint8:
        raise InputError(f"{where}: overlay must be uint8 RGB, not {array.dtype}")
    if array.shape != (rows, columns, 3):
        raise InputError(
            f"{where}: overlay shape {array.shape} is not the slice's ({rows}, {columns}, 3); "
            "resample it onto the slice's grid"
        )
    return np.ascontiguousarray(array)


def _orientation(
    ref: Dataset, row_dir: np.ndarray | None, col_dir: np.ndarray | None, where: Path
) -> tuple[str, str]:
    """PatientOrientation of the slice: from its direction cosines, else as it states it."""
    if row_dir is not None and col_dir is not None:
        return _letters(row_dir), _letters(col_dir)
    stated = [str(v) for v in (ref.get("PatientOrientation") or [])]
    if len(stated) == 2 and all(stated):
        return stated[0], stated[1]
    raise InputError(
        f"{where}: the slice has neither ImageOrientationPatient nor PatientOrientation"
    )


def _letters(direction: np.ndarray) -> str:
    """PatientOrientation letters of an LPS direction, most significant component first."""
    order = np.argsort(-np.abs(direction), kind="stable")
    return "".join(
        _LETTERS[axis][0 if direction[axis] > 0 else 1]
        for axis in order
        if abs(direction[axis]) > _LETTER_THRESHOLD
    )
