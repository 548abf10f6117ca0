"""Heatmap overlays as DICOM Secondary Capture: same study, the right slice, deterministic.

The source's files carry random names and its slice normal points to -z, so a capture
that took "slice k" from file order or name order would reference the wrong instance and
these tests would see it.
"""

from __future__ import annotations

import datetime
import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.dicom_sr import DISCLAIMER
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.secondary_capture import write_heatmap_capture
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_ct import plan_cohort

SHAPE = (6, 16, 20)  # z, rows, columns


@dataclass(frozen=True)
class Source:
    folder: Path
    identity: StudyIdentity
    overlay: np.ndarray
    capture: Path  # of slice 4


def _write_series(folder: Path, identity: StudyIdentity, direction: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    array = rng.integers(-1000, 1000, size=SHAPE).astype(np.float32)
    volume = Volume(array, (2.0, 0.9, 0.6), np.array([10.0, -4.0, 25.0]), direction, "CT")
    written = write_ct_series(volume, identity, folder.parent / f"{folder.name}_written")
    folder.mkdir(parents=True)
    for k, path in zip(rng.permutation(len(written)), written, strict=True):
        shutil.copy(path, folder / f"{rng.integers(10**8):08d}_{k}.dcm")


def _overlay(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*SHAPE[1:], 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    identity = plan_cohort(1, seed=17)[0].identity
    root = tmp_path_factory.mktemp("sc")
    direction = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    _write_series(root / "series", identity, direction)
    overlay = _overlay()
    capture = write_heatmap_capture(
        root / "series", overlay, root / "out" / "sc.dcm", slice_index=4
    )
    return Source(root / "series", identity, overlay, capture)


def _instance_at_slice(folder: Path) -> dict[int, pydicom.Dataset]:
    """Volume slice -> header, computed by rounding position along the reader's normal."""
    volume = read_image(folder)
    result: dict[int, pydicom.Dataset] = {}
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        offset = np.array([float(v) for v in ds.ImagePositionPatient]) - volume.origin_lps
        result[round(float(offset @ volume.direction[:, 2] / volume.spacing_mm[0]))] = ds
    return result


def test_capture_is_filed_in_the_source_study_as_a_derived_image(source: Source) -> None:
    sc = pydicom.dcmread(source.capture)
    ct = _instance_at_slice(source.folder)[4]
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert sc.StudyInstanceUID == ct.StudyInstanceUID == source.identity.study_uid
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge"):
        assert sc[keyword].value == ct[keyword].value
    assert sc.AccessionNumber == ct.AccessionNumber
    assert sc.SeriesInstanceUID != ct.SeriesInstanceUID
    assert sc.Manufacturer == "medsight"
    assert sc.SeriesNumber == 903 and sc.SeriesDescription == "medsight AI heatmap overlay"
    assert sc.BurnedInAnnotation == "NO"
    assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "heatmap" in sc.DerivationDescription.lower()
    assert sc.ImageComments == DISCLAIMER
    assert sc.ContentDate == sc.DateOfSecondaryCapture == source.identity.study_date
    assert "InstanceCreationDate" not in sc


@pytest.mark.parametrize("k", [0, 2, 5])
def test_references_the_chosen_slice_by_geometry(source: Source, tmp_path: Path, k: int) -> None:
    out = write_heatmap_capture(source.folder, source.overlay, tmp_path / "sc.dcm", slice_index=k)
    sc = pydicom.dcmread(out)
    ct = _instance_at_slice(source.folder)[k]
    (ref,) = sc.SourceImageSequence
    assert ref.ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == ct.SOPClassUID
    assert ref.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    assert "ReferencedFrameNumber" not in ref


def test_slice_by_uid_is_the_same_capture_as_by_index(source: Source, tmp_path: Path) -> None:
    uid = _instance_at_slice(source.folder)[4].SOPInstanceUID
    out = write_heatmap_capture(
        source.folder, source.overlay, tmp_path / "sc.dcm", sop_instance_uid=uid
    )
    assert out.read_bytes() == source.capture.read_bytes()


def test_pixels_geometry_and_orientation_follow_the_slice(source: Source) -> None:
    sc = pydicom.dcmread(source.capture)
    ct = _instance_at_slice(source.folder)[4]
    assert sc.PhotometricInterpretation == "RGB" and sc.SamplesPerPixel == 3
    np.testing.assert_array_equal(sc.pixel_array, source.overlay)
    assert [float(v) for v in sc.PixelSpacing] == [float(v) for v in ct.PixelSpacing]
    # Rows run along +x (patient left), columns along -y (anterior).
    assert list(sc.PatientOrientation) == ["L", "A"]


def test_oblique_slices_get_letters_most_significant_first(tmp_path: Path) -> None:
    angle = np.deg2rad(30)
    c, s = np.cos(angle), np.sin(angle)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    identity = plan_cohort(1, seed=18)[0].identity
    _write_series(tmp_path / "oblique", identity, direction)
    out = write_heatmap_capture(
        tmp_path / "oblique", _overlay(), tmp_path / "sc.dcm", slice_index=0
    )
    # Row direction (cos, sin, 0) is mostly left, partly posterior; column (-sin, cos, 0)
    # mostly posterior, partly right.
    assert list(pydicom.dcmread(out).PatientOrientation) == ["LP", "PR"]


def test_same_inputs_give_identical_bytes(source: Source, tmp_path: Path) -> None:
    again = write_heatmap_capture(source.folder, source.overlay, tmp_path / "a.dcm", slice_index=4)
    assert again.read_bytes() == source.capture.read_bytes()
    other = write_heatmap_capture(source.folder, _overlay(1), tmp_path / "b.dcm", slice_index=4)
    first, changed = pydicom.dcmread(source.capture), pydicom.dcmread(other)
    assert changed.SOPInstanceUID != first.SOPInstanceUID
    assert changed.SeriesInstanceUID != first.SeriesInstanceUID


def test_given_content_datetime_is_used(source: Source, tmp_path: Path) -> None:
    when = datetime.datetime(2027, 6, 7, 8, 9, 10)
    out = write_heatmap_capture(
        source.folder, source.overlay, tmp_path / "sc.dcm", slice_index=4, content_datetime=when
    )
    sc = pydicom.dcmread(out)
    assert (sc.ContentDate, sc.ContentTime) == ("20270607", "080910")
    assert (sc.DateOfSecondaryCapture, sc.TimeOfSecondaryCapture) == ("20270607", "080910")


def test_file_is_part10_and_readable_by_highdicom(source: Source) -> None:
    assert source.capture.read_bytes()[128:132] == b"DICM"
    ds = pydicom.dcmread(source.capture)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    np.testing.assert_array_equal(
        pydicom.dcmread(io.BytesIO(buffer.getvalue())).pixel_array, source.overlay
    )
    image = hd.imread(source.capture)
    np.testing.assert_array_equal(image.get_frame(1), source.overlay)


def test_enhanced_multiframe_source_names_the_frame(source: Source, tmp_path: Path) -> None:
    datasets = [pydicom.dcmread(p) for p in sorted(source.folder.glob("*.dcm"))]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets,
        series_instance_uid=deterministic_uid("sc-mf-series"),
        series_number=3,
        sop_instance_uid=deterministic_uid("sc-mf-instance"),
        instance_number=1,
    )
    mf = tmp_path / "enhanced.dcm"
    enhanced.save_as(mf)
    volume = read_image(mf)
    positions = [
        np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        for item in pydicom.dcmread(mf, stop_before_pixels=True).PerFrameFunctionalGroupsSequence
    ]
    out = write_heatmap_capture(mf, source.overlay, tmp_path / "sc.dcm", slice_index=1)
    (ref,) = pydicom.dcmread(out).SourceImageSequence
    assert ref.ReferencedSOPInstanceUID == deterministic_uid("sc-mf-instance")
    position = positions[int(ref.ReferencedFrameNumber) - 1]
    z = (position - volume.origin_lps) @ volume.direction[:, 2] / volume.spacing_mm[0]
    assert round(float(z)) == 1
    with pytest.raises(InputError, match="frames; pick one by slice_index"):
        write_heatmap_capture(
            mf,
            source.overlay,
            tmp_path / "x.dcm",
            sop_instance_uid=deterministic_uid("sc-mf-instance"),
        )


@pytest.mark.parametrize(
    ("overlay", "words"),
    [
        (np.zeros((16, 20, 3), np.float32), "must be uint8"),
        (np.zeros((16, 20, 3), np.uint16), "must be uint8"),
        (np.zeros((20, 16, 3), np.uint8), "(20, 16, 3) is not the slice's (16, 20, 3)"),
        (np.zeros((16, 20), np.uint8), "(16, 20) is not"),
        (np.zeros((16, 20, 4), np.uint8), "(16, 20, 4) is not"),
    ],
)
def test_bad_overlays_are_refused_in_one_line(
    source: Source, tmp_path: Path, overlay: np.ndarray, words: str
) -> None:
    out = tmp_path / "sc.dcm"
    with pytest.raises(InputError) as info:
        write_heatmap_capture(source.folder, overlay, out, slice_index=0)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_bad_slice_choices_and_sources_are_refused(source: Source, tmp_path: Path) -> None:
    out = tmp_path / "sc.dcm"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    cases = [
        ({"slice_index": 6}, source.folder, "slice_index 6 is not in 0..5"),
        ({"slice_index": -1}, source.folder, "slice_index -1"),
        ({}, source.folder, "exactly one"),
        ({"slice_index": 0, "sop_instance_uid": "1.2.3"}, source.folder, "exactly one"),
        ({"sop_instance_uid": "1.2.3"}, source.folder, "no instance with SOPInstanceUID"),
        ({"slice_index": 0}, empty, "no DICOM image files"),
        ({"sop_instance_uid": "1.2.3"}, empty, "no DICOM image files"),
        ({"slice_index": 0, "description": "x" * 65}, source.folder, "description"),
    ]
    for kwargs, folder, words in cases:
        with pytest.raises(InputError) as info:
            write_heatmap_capture(folder, source.overlay, out, **kwargs)  # type: ignore[arg-type]
        assert words in str(info.value) and "\n" not in str(info.value), kwargs
        assert not out.exists()


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_finds_no_errors(source: Source) -> None:
    run = subprocess.run(
        ["dciodvfy", str(source.capture)], capture_output=True, text=True, check=False
    )
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
