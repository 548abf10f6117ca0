"""Write segmentation results as DICOM SEG (reading back: `medsight.imaging.io.dicom_seg_read`).

A label map here is an integer array indexed ``[z, y, x]`` in exactly the geometry of
``read_image(source)``: same shape, slices in the reader's order (ImagePositionPatient
projected on the slice normal, never file name or InstanceNumber). Value 0 is background;
value ``n`` belongs to the segment described by the `SegmentDescription` whose ``number`` is
``n``.

highdicom does the encoding (functional groups, bit packing, segment and derivation
sequences). What is ours: validating the label map and segment descriptions before anything
is written, mapping each source instance (or frame of a multi-frame source) to its volume
slice by geometry so that every SEG frame references the right source image whatever the
files are called, determinism and an atomic write. The SEG is BINARY, one segment per
description, empty frames omitted, in the source's study so that a PACS files it with the
images it segments.

Output is deterministic, as the SR's is (`medsight.imaging.io.dicom_sr`): the UIDs derive from the
source series, the label map, the descriptions and the date; ContentDate/Time (and
SeriesDate/Time) are the caller's ``content_datetime`` or else the source's StudyDate/Time.
A source with no date (de-identified series may carry none, or empty ones) is dated
`UNDATED`, 1900-01-01 00:00:00, the dummy date of medsight's de-identification, rather than
refused (a malformed StudyDate still is: highdicom copies it and cannot parse it). Of what
highdicom stamps or draws at random, InstanceCreationDate/Time are removed,
ContributionDateTime is set to the content date and time and DimensionOrganizationUID is
derived from the series. Same inputs, byte-identical file.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from medsight import __version__
from medsight.errors import InputError
from medsight.imaging.io.ct_writer import deterministic_uid
from medsight.imaging.io.derived_headers import content_datetime_of, drop_wall_clock, fill_type2
from medsight.imaging.io.dicom_frames import file_frames
from medsight.imaging.io.dicom_series import LARGEST, list_series, summarise_series
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.runs.atomic import atomic_path

#: (code value, coding scheme designator, code meaning), as in a DICOM code sequence item.
CodeTuple = tuple[str, str, str]

#: Longest value of an LO element (SegmentLabel, AlgorithmName, SeriesDescription).
_LO_MAX = 64
#: Largest segment number a BINARY SEG can carry (SegmentNumber is US).
_MAX_SEGMENT = 65535
#: (ContentDate, ContentTime) of a SEG whose source has no usable date and whose caller gives
#: none: the DA and TM dummies of `medsight.imaging.io.deid`, never the wall clock.
UNDATED = ("19000101", "000000")


def _code(code: Code) -> CodeTuple:
    return (str(code.value), str(code.scheme_designator), str(code.meaning))


_ANATOMY = _code(codes.SCT.AnatomicalStructure)
_ABNORMAL = _code(codes.SCT.MorphologicallyAbnormalStructure)
_TISSUE = _code(codes.SCT.Tissue)
#: Known segment names (lower case, single spaces) -> (category, type).
_KNOWN: dict[str, tuple[CodeTuple, CodeTuple]] = {
    "lung": (_ANATOMY, _code(codes.SCT.Lung)),
    "lungs": (_ANATOMY, _code(codes.SCT.Lung)),
    "liver": (_ANATOMY, _code(codes.SCT.Liver)),
    "kidney": (_ANATOMY, _code(codes.SCT.Kidney)),
    "kidneys": (_ANATOMY, _code(codes.SCT.Kidney)),
    "nodule": (_ABNORMAL, _code(codes.SCT.Nodule)),
    "lung nodule": (_ABNORMAL, _code(codes.SCT.Nodule)),
    "pulmonary nodule": (_ABNORMAL, _code(codes.SCT.Nodule)),
    "tumor": (_ABNORMAL, _code(codes.SCT.Tumor)),
    "tumour": (_ABNORMAL, _code(codes.SCT.Tumor)),
    "lesion": (_ABNORMAL, _code(codes.SCT.Lesion)),
    "mass": (_ABNORMAL, _code(codes.SCT.Mass)),
}


@dataclass(frozen=True)
class SegmentDescription:
    """What one label value of a label map means, in words and in SNOMED CT codes."""

    number: int  # the label value in the label map, 1..N
    label: str  # SegmentLabel, e.g. "lung"
    segmented_property_category: CodeTuple
    segmented_property_type: CodeTuple


@dataclass(frozen=True)
class SourceFrame:
    """One plane of the source series and the volume slice it became."""

    dataset: Dataset  # header of the file holding it (no pixel data)
    frame_number: int  # 1-based within its file
    z: int
    position: np.ndarray | None  # ImagePositionPatient, LPS mm


def describe_segment(number: int, label: str) -> SegmentDescription:
    """Describe label value ``number`` named ``label`` with SNOMED CT codes.

    Known names (case, ``_`` and ``-`` ignored): lung(s), liver, kidney(s) as Anatomical
    Structure; nodule, lung/pulmonary nodule, tumor/tumour, lesion, mass as Morphologically
    Abnormal Structure. Any other name is coded as Tissue/Tissue; its label is kept as
    given, so a viewer still shows the user's word.
    """
    key = " ".join(label.replace("_", " ").replace("-", " ").lower().split())
    category, property_type = _KNOWN.get(key, (_TISSUE, _TISSUE))
    return SegmentDescription(number, label, category, property_type)


def write_dicom_seg(
    label_map: np.ndarray,
    source: Path,
    segments: Sequence[SegmentDescription],
    out_path: Path,
    *,
    algorithm_name: str,
    algorithm_version: str,
    series_description: str = "medsight segmentation",
    series_number: int = 901,
    series: str | None = None,
    content_datetime: datetime.datetime | None = None,
    volume: Volume | None = None,
) -> Path:
    """Write ``label_map`` as a DICOM SEG of the image series at ``source``.

    Args:
        label_map: integer array ``[z, y, x]`` in the geometry of ``read_image(source)``;
            0 is background.
        source: the DICOM file or series folder the label map was computed from.
        segments: one description per label value; numbers must run 1..N (highdicom
            numbers BINARY segments consecutively). A described value may be absent.
        out_path: the SEG file to write (replaced whole, never left half-written).
        algorithm_name: AlgorithmName of the model that made the label map.
        algorithm_version: AlgorithmVersion (e.g. the checkpoint's version).
        series_description: SeriesDescription of the new SEG series.
        series_number: SeriesNumber of the new SEG series.
        series: for a folder holding several series, the SeriesInstanceUID that was read
            (or ``"largest"``), as given to `read_image`.
        content_datetime: ContentDate/Time (and SeriesDate/Time) of the SEG; None takes
            the source's study date and time, or `UNDATED` when it has none, which
            keeps the output a function of its inputs.
        volume: ``read_image(source, series=series)`` when the caller has already read it
            (prediction has): the pixels are not read a second time.

    Returns:
        ``out_path``.

    Raises:
        InputError: ``source`` cannot be read (see `read_image`); the label map is not
            integer, has another shape than the image, holds negative values or values
            with no description; the descriptions are empty, duplicated, not numbered
            1..N or have labels or codes DICOM cannot hold; the source is several
            multi-frame files, or highdicom refuses it. Nothing is written then.
    """
    source, out_path = Path(source), Path(out_path)
    ordered = _check_segments(segments, out_path)
    _check_text(algorithm_name, "algorithm name", out_path)
    _check_text(algorithm_version, "algorithm version", out_path)
    _check_text(series_description, "series description", out_path)
    if not 0 <= series_number < 2**31:
        raise InputError(f"{out_path}: series number {series_number} is not in 0..2^31-1")
    if volume is None:
        volume = read_image(source, series=series)
    labels = _check_label_map(label_map, volume, ordered, source, out_path)
    frames = source_frames(series_files(source, series), volume)
    datasets, pixels = _highdicom_input(frames, labels, source)
    for ds in datasets:
        fill_type2(ds)
    day, time = content_datetime_of(datasets[0], content_datetime, source, undated=UNDATED)
    digest = hashlib.sha256()
    digest.update(repr((labels.shape, [astuple(s) for s in ordered])).encode())
    digest.update(repr((algorithm_name, algorithm_version, series_description)).encode())
    digest.update(repr((series_number, day, time)).encode())
    digest.update(np.ascontiguousarray(labels).tobytes())
    source_series = str(datasets[0].get("SeriesInstanceUID", ""))
    series_uid = deterministic_uid("medsight-seg", source_series, digest.hexdigest())
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name,
        family=codes.cid7162.ArtificialIntelligence,
        version=algorithm_version,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=s.number,
            segment_label=s.label,
            segmented_property_category=Code(*s.segmented_property_category),
            segmented_property_type=Code(*s.segmented_property_type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for s in ordered
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=series_uid,
            series_number=series_number,
            sop_instance_uid=deterministic_uid(series_uid, "instance"),
            instance_number=1,
            manufacturer="medsight",
            manufacturer_model_name="medsight",
            software_versions=__version__,
            # Required by highdicom; software has no serial number.
            device_serial_number="0",
            series_description=series_description,
            omit_empty_frames=True,
            content_date=day,
            content_time=time,
            series_date=day,
            series_time=time,
        )
    except ValueError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{source}: highdicom cannot encode a SEG of this image: {reason}"
        ) from exc
    drop_wall_clock(seg, day, time)
    _derive_dimension_organization_uids(seg, series_uid)
    with atomic_path(out_path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return out_path


def _derive_dimension_organization_uids(seg: Dataset, series_uid: str) -> None:
    """Replace the DimensionOrganizationUID(s) highdicom draws at random by derived ones."""
    derived: dict[str, str] = {}
    for keyword in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(keyword, []):
            if "DimensionOrganizationUID" in item:
                drawn = str(item.DimensionOrganizationUID)
                if drawn not in derived:
                    derived[drawn] = deterministic_uid(series_uid, "dimension", len(derived))
                item.DimensionOrganizationUID = derived[drawn]


def _check_text(value: str, what: str, where: Path) -> None:
    if not value.strip() or len(value) > _LO_MAX or "\\" in value or not value.isprintable():
        raise InputError(
            f"{where}: {what} {value!r} must be 1 to {_LO_MAX} printable characters, no '\\'"
        )


def _check_segments(
    segments: Sequence[SegmentDescription], out_path: Path
) -> list[SegmentDescription]:
    if not segments:
        raise InputError(f"{out_path}: no segment descriptions; a SEG needs at least one")
    ordered = sorted(segments, key=lambda s: s.number)
    numbers = [s.number for s in ordered]
    if len(set(numbers)) != len(numbers):
        raise InputError(f"{out_path}: segment numbers repeat ({_listing(numbers)})")
    if numbers != list(range(1, len(numbers) + 1)) or numbers[-1] > _MAX_SEGMENT:
        raise InputError(
            f"{out_path}: segment numbers must run 1..N without gaps for a BINARY SEG "
            f"(got {_listing(numbers)})"
        )
    for s in ordered:
        _check_text(s.label, f"segment {s.number} label", out_path)
        for code in (s.segmented_property_category, s.segmented_property_type):
            if len(code) != 3 or not all(isinstance(v, str) and v.strip() for v in code):
                raise InputError(
                    f"{out_path}: segment {s.number} code {code!r} is not "
                    "(code value, coding scheme designator, code meaning)"
                )
    return ordered


def _check_label_map(
    label_map: np.ndarray,
    volume: Volume,
    segments: list[SegmentDescription],
    source: Path,
    out_path: Path,
) -> np.ndarray:
    """The label map as uint8/uint16, after checking it fits ``volume`` and ``segments``."""
    array = np.asarray(label_map)
    if array.dtype.kind not in "biu":
        raise InputError(f"{out_path}: label map must hold integers, not {array.dtype}")
    if array.shape != volume.shape:
        raise InputError(
            f"{source}: label map shape {array.shape} differs from the image's "
            f"{volume.shape} (z, y, x)"
        )
    lowest = int(array.min()) if array.size else 0
    highest = int(array.max()) if array.size else 0
    if lowest < 0:
        raise InputError(f"{out_path}: label map holds negative values (minimum {lowest})")
    n_segments = len(segments)  # numbers run 1..N (checked), so 0..N are all described
    if highest > n_segments:
        undescribed = [int(v) for v in np.unique(array[array > n_segments])]
        raise InputError(
            f"{out_path}: label value(s) {_listing(undescribed)} have no segment description "
            f"(described: 1..{n_segments})"
        )
    dtype = np.uint8 if n_segments <= np.iinfo(np.uint8).max else np.uint16
    return array.astype(dtype, copy=False)


def _listing(numbers: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (", ..." if len(numbers) > limit else "")


def series_files(source: Path, series: str | None) -> list[Path]:
    """The files `read_image` read for ``source`` and ``series`` (it has already succeeded)."""
    if source.is_file():
        return [source]
    groups = list_series(source)
    if series == LARGEST:
        series = summarise_series(source)[0].series_uid
    if series is None:
        (files,) = groups.values()  # read_image refused a folder of several series
        return sorted(files)
    return sorted(groups[series])


def source_frames(files: list[Path], volume: Volume) -> list[SourceFrame]:
    """Every frame of ``files`` with the volume slice it was read into.

    Frames are ranked by position along the volume's slice direction, which is the order
    the reader gave them; ranking rather than rounding (position - origin) / spacing keeps
    series with missing or irregular slices right, where the reader keeps the slices it has.
    """
    found: list[tuple[Dataset, int, np.ndarray | None]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise InputError(f"{f}: cannot be read as DICOM") from exc
        try:
            n_frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{f}: NumberOfFrames is not a number") from exc
        frames, _ = file_frames(ds, n_frames, str(f))
        found.extend((ds, frame.index + 1, frame.position) for frame in frames)
    n = volume.shape[0]
    if len(found) != n:
        raise InputError(f"{files[0]}: series has {len(found)} frames, the image {n} slices")
    if any(position is None for _, _, position in found):
        z = np.arange(n)  # no positions: the reader kept file order (one file or one plane)
    else:
        along = np.array([(p - volume.origin_lps) @ volume.direction[:, 2] for _, _, p in found])
        z = np.empty(n, dtype=np.int64)
        z[np.argsort(along, kind="stable")] = np.arange(n)
    return [
        SourceFrame(ds, number, int(k), position)
        for (ds, number, position), k in zip(found, z, strict=True)
    ]


def _highdicom_input(
    frames: list[SourceFrame], labels: np.ndarray, source: Path
) -> tuple[list[Dataset], np.ndarray]:
    """Source datasets and the pixel array whose frame ``i`` is their frame ``i``."""
    datasets = list({id(f.dataset): f.dataset for f in frames}.values())
    if len(datasets) == 1:
        # One file: highdicom pairs array frame i with the file's frame i + 1.
        by_number = sorted(frames, key=lambda f: f.frame_number)
        return datasets, labels[[f.z for f in by_number]]
    if len(datasets) != len(frames):
        raise InputError(
            f"{source}: a series of several multi-frame files is not supported yet for DICOM "
            "SEG output"
        )
    # Single-frame files: highdicom pairs array frame i with source image i.
    by_slice = sorted(frames, key=lambda f: f.z)
    return [f.dataset for f in by_slice], labels
