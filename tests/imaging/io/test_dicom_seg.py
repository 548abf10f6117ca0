"""DICOM SEG output: header, frame-to-source mapping, round trip, bad input.

The source is a tiny CT series whose files carry random names (and the writer numbers them
head first), with a slice normal pointing to -z, so a SEG that followed file names, file
order or +z would put frames on the wrong source slices and these tests would see it.
"""

from __future__ import annotations

import datetime
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import SegmentationStorage

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity, write_ct_series
from medsight.imaging.io.dicom_seg import (
    UNDATED,
    SegmentDescription,
    describe_segment,
    write_dicom_seg,
)
from medsight.imaging.io.dicom_seg_read import read_dicom_seg
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_ct import plan_cohort

SHAPE = (8, 32, 32)
SEGMENTS = [describe_segment(1, "lung"), describe_segment(2, "nodule")]


def _write(
    label_map: np.ndarray,
    source: Path,
    out: Path,
    segments: list[SegmentDescription] = SEGMENTS,
    content_datetime: datetime.datetime | None = None,
) -> Path:
    return write_dicom_seg(
        label_map,
        source,
        segments,
        out,
        algorithm_name="lungct-unet",
        algorithm_version="1.2.0",
        content_datetime=content_datetime,
    )


@dataclass(frozen=True)
class Source:
    folder: Path
    identity: StudyIdentity
    label_map: np.ndarray
    seg: Path


def _label_map() -> np.ndarray:
    """Lung on slices 1 and 4, nodule on 4 and 6 (slice 4 holds both), off-centre blocks."""
    label_map = np.zeros(SHAPE, dtype=np.int64)
    label_map[1, 2:9, 3:20] = 1
    label_map[4, 20:30, 1:6] = 1
    label_map[4, 5:8, 25:31] = 2
    label_map[6, 11:14, 7:9] = 2
    return label_map


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    identity = plan_cohort(1, seed=23)[0].identity
    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 1000, size=SHAPE).astype(np.float32)
    # Slice normal (0, 0, -1): positions fall as the slice index rises.
    direction = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    volume = Volume(array, (2.0, 0.75, 0.8), np.array([-12.0, 20.0, -40.0]), direction, "CT")
    root = tmp_path_factory.mktemp("seg")
    written = write_ct_series(volume, identity, root / "written")
    folder = root / "series"
    folder.mkdir()
    for k, path in zip(rng.permutation(len(written)), written, strict=True):
        shutil.copy(path, folder / f"{rng.integers(10**8):08d}_{k}.dcm")
    label_map = _label_map()
    seg = _write(label_map, folder, root / "out" / "seg.dcm")
    return Source(folder, identity, label_map, seg)


def _slice_of_instance(folder: Path) -> dict[str, int]:
    """SOPInstanceUID -> volume slice, computed by rounding along the reader's normal."""
    volume = read_image(folder)
    result = {}
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        offset = np.array([float(v) for v in ds.ImagePositionPatient]) - volume.origin_lps
        z = offset @ volume.direction[:, 2] / volume.spacing_mm[0]
        result[str(ds.SOPInstanceUID)] = round(float(z))
    return result


def test_header_names_segments_study_and_source_series(source: Source) -> None:
    seg = pydicom.dcmread(source.seg)
    ct = pydicom.dcmread(next(source.folder.glob("*.dcm")), stop_before_pixels=True)
    assert seg.SOPClassUID == SegmentationStorage
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.Manufacturer == "medsight"
    assert seg.StudyInstanceUID == ct.StudyInstanceUID
    assert seg.SeriesInstanceUID != ct.SeriesInstanceUID
    assert seg.SeriesDescription == "medsight segmentation" and seg.SeriesNumber == 901
    assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == [ct.SeriesInstanceUID]
    described = [
        (
            int(s.SegmentNumber),
            s.SegmentLabel,
            s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            s.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            s.SegmentAlgorithmType,
            s.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName,
        )
        for s in seg.SegmentSequence
    ]
    assert described == [
        (1, "lung", "39607008", "91723000", "AUTOMATIC", "lungct-unet"),
        (2, "nodule", "27925004", "49755003", "AUTOMATIC", "lungct-unet"),
    ]


def test_each_frame_references_the_source_slice_holding_its_mask(source: Source) -> None:
    seg = pydicom.dcmread(source.seg)
    slice_of = _slice_of_instance(source.folder)
    pixels = seg.pixel_array
    seen = set()
    for i, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ref = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        z = slice_of[ref]
        np.testing.assert_array_equal(pixels[i].astype(bool), source.label_map[z] == number)
        seen.add((number, z))
    # Empty frames are omitted: one frame per (segment, slice) with content.
    assert seen == {(1, 1), (1, 4), (2, 4), (2, 6)}


def test_read_dicom_seg_round_trips_the_label_map(source: Source) -> None:
    label_map, labels = read_dicom_seg(source.seg, source.folder)
    np.testing.assert_array_equal(label_map, source.label_map)
    assert labels == {1: "lung", 2: "nodule"}


def test_highdicom_reads_it(source: Source) -> None:
    seg = hd.seg.segread(source.seg)
    assert seg.segment_numbers == [1, 2]
    assert [c.value for c in seg.segmented_property_types] == ["39607008", "27925004"]
    slice_of = _slice_of_instance(source.folder)
    uid = next(u for u, z in slice_of.items() if z == 4)
    both = seg.get_pixels_by_source_instance([uid], combine_segments=True)
    np.testing.assert_array_equal(both[0], source.label_map[4])


def test_uids_are_deterministic_and_follow_content(source: Source, tmp_path: Path) -> None:
    first = pydicom.dcmread(source.seg)
    again = pydicom.dcmread(_write(source.label_map, source.folder, tmp_path / "a.dcm"))
    changed = source.label_map.copy()
    changed[0, 0, 0] = 1
    other = pydicom.dcmread(_write(changed, source.folder, tmp_path / "b.dcm"))
    assert (again.SeriesInstanceUID, again.SOPInstanceUID) == (
        first.SeriesInstanceUID,
        first.SOPInstanceUID,
    )
    assert other.SeriesInstanceUID != first.SeriesInstanceUID
    assert other.SOPInstanceUID != first.SOPInstanceUID


def _dates(seg: pydicom.Dataset) -> list[str]:
    """Every date and time of ``seg`` that is not the study's or the source equipment's."""
    stamped = [seg.ContentDate, seg.ContentTime, seg.SeriesDate, seg.SeriesTime]
    return stamped + [
        item.ContributionDateTime
        for item in seg.ContributingEquipmentSequence
        if "ContributionDateTime" in item
    ]


def test_same_inputs_give_identical_bytes_at_another_time(source: Source, tmp_path: Path) -> None:
    first = _write(source.label_map, source.folder, tmp_path / "first.dcm")
    time.sleep(1.1)  # highdicom stamps the wall clock to the second (and finer)
    again = _write(source.label_map, source.folder, tmp_path / "again.dcm")
    assert again.read_bytes() == first.read_bytes() == source.seg.read_bytes()
    seg = pydicom.dcmread(again)
    assert "InstanceCreationDate" not in seg and "InstanceCreationTime" not in seg
    study = source.identity.study_date
    assert _dates(seg) == [study, "093000", study, "093000", f"{study}093000"]


def test_given_content_datetime_is_used(source: Source, tmp_path: Path) -> None:
    when = datetime.datetime(2027, 3, 4, 5, 6, 7)
    out = _write(source.label_map, source.folder, tmp_path / "seg.dcm", content_datetime=when)
    seg = pydicom.dcmread(out)
    assert _dates(seg) == ["20270304", "050607", "20270304", "050607", "20270304050607"]
    assert seg.StudyDate == source.identity.study_date
    # Another date is another instance, never the same UID with other content.
    assert seg.SOPInstanceUID != pydicom.dcmread(source.seg).SOPInstanceUID
    again = _write(source.label_map, source.folder, tmp_path / "again.dcm", content_datetime=when)
    assert again.read_bytes() == out.read_bytes()


def test_source_without_any_date_is_dated_undated(source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "undated"
    folder.mkdir()
    for path in source.folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword in ("SeriesDate", "ContentDate", "StudyTime", "SeriesTime", "ContentTime"):
            delattr(ds, keyword)
        ds.StudyDate = ""  # Type 2: present and empty, as de-identification may leave it
        ds.save_as(folder / path.name)
    first = _write(source.label_map, folder, tmp_path / "first.dcm")
    time.sleep(1.1)
    again = _write(source.label_map, folder, tmp_path / "again.dcm")
    assert again.read_bytes() == first.read_bytes()
    seg = pydicom.dcmread(again)
    day, hour = UNDATED
    assert _dates(seg) == [day, hour, day, hour, day + hour]
    np.testing.assert_array_equal(read_dicom_seg(again, folder)[0], source.label_map)


def _bad_map(kind: str) -> np.ndarray:
    label_map = _label_map()
    if kind == "shape":
        return label_map[1:]
    if kind == "undescribed":
        label_map[3, 0, 0] = 3
    elif kind == "negative":
        label_map[3, 0, 0] = -1
    elif kind == "float":
        return label_map.astype(np.float32)
    return label_map


@pytest.mark.parametrize("kind", ["shape", "undescribed", "negative", "float"])
def test_bad_label_map_is_refused_and_nothing_written(
    source: Source, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out" / "seg.dcm"
    with pytest.raises(InputError) as info:
        _write(_bad_map(kind), source.folder, out)
    message = str(info.value)
    assert "\n" not in message
    assert source.identity.patient_name not in message
    assert source.identity.patient_id not in message
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize("numbers", [[1, 3], [1, 1], [2]])
def test_segment_numbers_must_run_from_one_without_gaps(
    source: Source, tmp_path: Path, numbers: list[int]
) -> None:
    segments = [describe_segment(n, f"part {n}") for n in numbers]
    out = tmp_path / "seg.dcm"
    with pytest.raises(InputError, match="segment numbers"):
        _write(np.zeros(SHAPE, np.uint8), source.folder, out, segments)
    assert not out.exists()


def test_single_file_source(tmp_path: Path) -> None:
    ct_small = Path(str(get_testdata_file("CT_small.dcm")))
    label_map = np.zeros((1, 128, 128), dtype=np.uint8)
    label_map[0, 40:70, 50:60] = 1
    out = _write(label_map, ct_small, tmp_path / "seg.dcm", [describe_segment(1, "liver")])
    seg = pydicom.dcmread(out)
    src = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    source_uid = pydicom.dcmread(ct_small, stop_before_pixels=True).SOPInstanceUID
    assert src.SourceImageSequence[0].ReferencedSOPInstanceUID == source_uid
    read, labels = read_dicom_seg(out, ct_small)
    np.testing.assert_array_equal(read, label_map)
    assert labels == {1: "liver"}


def test_enhanced_multiframe_source(source: Source, tmp_path: Path) -> None:
    datasets = [pydicom.dcmread(p) for p in sorted(source.folder.glob("*.dcm"))]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets,
        series_instance_uid=hd.UID(),
        series_number=3,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    mf = tmp_path / "enhanced.dcm"
    enhanced.save_as(mf)
    out = _write(source.label_map, mf, tmp_path / "seg.dcm")
    read, _ = read_dicom_seg(out, mf)
    np.testing.assert_array_equal(read, source.label_map)
    # Each SEG frame holds the mask of the slice at its position, and names the
    # multi-frame source frame at that position.
    seg = pydicom.dcmread(out)
    volume = read_image(mf)
    positions = [
        item.PlanePositionSequence[0].ImagePositionPatient
        for item in pydicom.dcmread(mf, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    ]
    for item, pixels in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array, strict=True):
        position = item.PlanePositionSequence[0].ImagePositionPatient
        offset = np.array([float(v) for v in position]) - volume.origin_lps
        z = round(float(offset @ volume.direction[:, 2] / volume.spacing_mm[0]))
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_array_equal(pixels.astype(bool), source.label_map[z] == segment)
        frame = int(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
        assert position == positions[frame - 1]


def test_source_missing_type2_study_attributes_still_writes(source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "stripped"
    folder.mkdir()
    for path in source.folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword in ("StudyID", "AccessionNumber", "PatientSex", "ReferringPhysicianName"):
            delattr(ds, keyword)
        ds.save_as(folder / path.name)
    out = _write(source.label_map, folder, tmp_path / "seg.dcm")
    seg = pydicom.dcmread(out)
    assert seg.StudyID == "" and seg.PatientSex == ""
    np.testing.assert_array_equal(read_dicom_seg(out, folder)[0], source.label_map)


def test_reference_with_new_uids_is_matched_by_position(source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "reexported"
    folder.mkdir()
    for k, path in enumerate(source.folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = hd.UID()
        ds.save_as(folder / f"{k}.dcm")
    label_map, _ = read_dicom_seg(source.seg, folder)
    np.testing.assert_array_equal(label_map, source.label_map)


def test_seg_saved_inside_the_series_folder_reads_back(source: Source, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(source.folder, tmp_path / "series"))
    shutil.copy(source.seg, folder / "seg.dcm")
    label_map, _ = read_dicom_seg(folder / "seg.dcm", folder)
    np.testing.assert_array_equal(label_map, source.label_map)


def test_empty_label_map_writes_an_empty_seg(source: Source, tmp_path: Path) -> None:
    empty = np.zeros(SHAPE, dtype=np.uint8)
    out = _write(empty, source.folder, tmp_path / "seg.dcm")
    label_map, labels = read_dicom_seg(out, source.folder)
    assert not label_map.any() and labels == {1: "lung", 2: "nodule"}


def _sorted_sources(folder: Path) -> list[pydicom.Dataset]:
    slice_of = _slice_of_instance(folder)
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm")]
    return sorted(datasets, key=lambda ds: slice_of[str(ds.SOPInstanceUID)])


def _highdicom_seg(source: Source, pixels: np.ndarray, kind: str, path: Path) -> Path:
    n = 1 if pixels.ndim == 3 else pixels.shape[-1]
    segments = [
        hd.seg.SegmentDescription(
            segment_number=k + 1,
            segment_label=f"s{k + 1}",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type="MANUAL",
        )
        for k in range(n)
    ]
    seg = hd.seg.Segmentation(
        source_images=_sorted_sources(source.folder),
        pixel_array=pixels,
        segmentation_type=kind,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="other",
        manufacturer_model_name="other",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)
    return path


def test_fractional_seg_is_thresholded_at_half(source: Source, tmp_path: Path) -> None:
    probability = np.zeros(SHAPE, dtype=np.float32)
    probability[2, 4:10, 4:10] = 0.9
    probability[2, 20:25, 4:10] = 0.2
    path = _highdicom_seg(source, probability, "FRACTIONAL", tmp_path / "f.dcm")
    label_map, _ = read_dicom_seg(path, source.folder)
    np.testing.assert_array_equal(label_map, (probability >= 0.5).astype(np.uint16))


def test_overlapping_segments_cannot_become_one_label_map(source: Source, tmp_path: Path) -> None:
    stacked = np.zeros((*SHAPE, 2), dtype=np.uint8)
    stacked[3, 5:10, 5:10, 0] = 1
    stacked[3, 8:12, 8:12, 1] = 1
    path = _highdicom_seg(source, stacked, "BINARY", tmp_path / "o.dcm")
    with pytest.raises(InputError, match="overlap"):
        read_dicom_seg(path, source.folder)


def test_read_refuses_a_file_that_is_not_a_seg(source: Source) -> None:
    image = next(source.folder.glob("*.dcm"))
    with pytest.raises(InputError, match="not a DICOM SEG"):
        read_dicom_seg(image, source.folder)


@pytest.mark.parametrize(
    ("label", "category", "property_type"),
    [
        ("lung", codes.SCT.AnatomicalStructure, codes.SCT.Lung),
        ("Lungs", codes.SCT.AnatomicalStructure, codes.SCT.Lung),
        ("lung_nodule", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Nodule),
        ("Nodule", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Nodule),
        ("liver", codes.SCT.AnatomicalStructure, codes.SCT.Liver),
        ("tumour", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Tumor),
        ("airway wall", codes.SCT.Tissue, codes.SCT.Tissue),
    ],
)
def test_describe_segment_codes(label: str, category: Code, property_type: Code) -> None:
    described = describe_segment(3, label)
    assert described == SegmentDescription(
        3,
        label,
        (category.value, "SCT", category.meaning),
        (property_type.value, "SCT", property_type.meaning),
    )
