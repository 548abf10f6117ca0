"""DICOM reading behaviours a user relies on: multi-frame, several series, slice problems
reported, photometric/sign handling, compressed syntaxes, and the configurable limits."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, EnhancedCTImageStorage, ExplicitVRLittleEndian

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.dicom_series import list_series, read_dicom_series, summarise_series
from medsight.imaging.io.limits import ReadLimits
from medsight.imaging.io.volume import Volume

# ---------------------------------------------------------------- enhanced multi-frame CT


def _enhanced_ct(volume: Volume, path: Path, frame_order: list[int]) -> None:
    """An Enhanced CT file built by hand: frames stored in ``frame_order``, per-frame
    positions and rescale, shared orientation and pixel measures (PS3.3 C.7.6.16)."""
    nz, ny, nx = volume.shape
    sz, sy, sx = volume.spacing_mm
    normal = volume.direction[:, 2]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(deterministic_uid("enhanced", path.name))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.SeriesInstanceUID = deterministic_uid("enhanced-series")
    ds.Rows, ds.Columns = ny, nx
    ds.NumberOfFrames = nz
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [f"{v:.6f}" for v in volume.direction[:, :2].T.ravel()]
    measures.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]
    measures.SliceThickness = f"{sz:.6g}"
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, stored = [], []
    for k in frame_order:
        slope, intercept = (0.5, -1000.0) if k % 2 else (1.0, -1024.0 + k)
        position, transform, item = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [f"{v:.4f}" for v in volume.origin_lps + normal * sz * k]
        transform.RescaleSlope, transform.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        transform.RescaleType = "HU"
        item.PlanePositionSequence = [position]
        item.PixelValueTransformationSequence = [transform]
        frames.append(item)
        stored.append(np.rint((volume.array[k] - intercept) / slope).astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.stack(stored).tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def enhanced(tmp_path: Path, tiny_ct: Volume) -> Path:
    path = tmp_path / "enhanced.dcm"
    _enhanced_ct(tiny_ct, path, [3, 0, 5, 1, 4, 2])
    return path


def test_enhanced_multiframe_frames_ordered_and_rescaled_per_frame(
    enhanced: Path, tiny_ct: Volume
) -> None:
    volume = read_dicom_series(enhanced)
    np.testing.assert_array_equal(volume.array, tiny_ct.array)
    np.testing.assert_allclose(volume.spacing_mm, tiny_ct.spacing_mm, rtol=1e-5)
    np.testing.assert_allclose(volume.origin_lps, tiny_ct.origin_lps, atol=1e-3)
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-6)
    assert volume.meta["kind"] == "dicom-multiframe"
    assert volume.meta["n_slices"] == 6
    assert volume.warnings == []


def test_enhanced_multiframe_in_a_folder(enhanced: Path, tiny_ct: Volume) -> None:
    volume = read_dicom_series(enhanced.parent)
    np.testing.assert_array_equal(volume.array, tiny_ct.array)


def test_enhanced_multiframe_with_too_few_per_frame_items(enhanced: Path) -> None:
    ds = pydicom.dcmread(enhanced)
    del ds.PerFrameFunctionalGroupsSequence[-1]
    ds.save_as(enhanced)
    with pytest.raises(InputError, match="PerFrameFunctionalGroupsSequence has 5 items"):
        read_dicom_series(enhanced)


# ---------------------------------------------------------------- several series


@pytest.fixture
def two_series(tmp_path: Path, tiny_ct: Volume, tiny_identity: StudyIdentity) -> Path:
    root = tmp_path / "study"
    write_ct_series(tiny_ct, tiny_identity, root / "a")
    small = Volume(tiny_ct.array[:3].copy(), tiny_ct.spacing_mm, tiny_ct.origin_lps, np.eye(3))
    other = StudyIdentity(**{**tiny_identity.__dict__, "series_uid": deterministic_uid("b")})
    write_ct_series(small, other, root / "b")
    return root


def test_several_series_are_listed_and_picked(two_series: Path, tiny_identity) -> None:
    groups = list_series(two_series)
    assert sorted(len(v) for v in groups.values()) == [3, 6]
    infos = summarise_series(two_series)
    assert [i.n_frames for i in infos] == [6, 3]
    with pytest.raises(InputError, match=r"holds 2 series .*\(6 slices\).*\(3 slices\)"):
        read_dicom_series(two_series)
    largest = read_dicom_series(two_series, series="largest")
    assert largest.shape[0] == 6 and largest.meta["n_series"] == 2
    assert any("2 series" in w for w in largest.warnings)
    picked = read_dicom_series(two_series, series=deterministic_uid("b"))
    assert picked.shape[0] == 3
    with pytest.raises(InputError, match="no series with SeriesInstanceUID 1.2.3"):
        read_dicom_series(two_series, series="1.2.3")


# ---------------------------------------------------------------- slice problems reported


def test_missing_slice_is_a_warning(tiny_series: Path, tiny_ct: Volume) -> None:
    files = sorted(tiny_series.glob("*.dcm"))
    (files[2]).unlink()
    volume = read_dicom_series(tiny_series)
    assert volume.shape[0] == 5
    assert volume.meta["slice_gaps_irregular"] is True
    assert any(w.startswith("missing slices: 1 gap(s)") for w in volume.warnings)


def test_irregular_spacing_is_a_warning(tiny_series: Path) -> None:
    victim = sorted(tiny_series.glob("*.dcm"))[2]
    ds = pydicom.dcmread(victim)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [f"{x:.4f}", f"{y:.4f}", f"{z + 0.6:.4f}"]
    ds.save_as(victim)
    volume = read_dicom_series(tiny_series)
    assert volume.meta["slice_gaps_irregular"] is True
    assert any("irregular slice spacing" in w and "0.6 mm" in w for w in volume.warnings)
    assert volume.spacing_mm[0] == pytest.approx(2.5)


def test_regular_series_has_no_warnings(tiny_series: Path) -> None:
    volume = read_dicom_series(tiny_series)
    assert volume.warnings == [] and volume.meta["slice_gaps_irregular"] is False
    assert volume.meta["kind"] == "dicom-series"
    assert volume.meta["transfer_syntax"] == "Explicit VR Little Endian"


def test_two_stacks_in_one_series_are_refused(tiny_series: Path) -> None:
    victim = sorted(tiny_series.glob("*.dcm"))[3]
    ds = pydicom.dcmread(victim)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [f"{x + 40:.4f}", f"{y:.4f}", f"{z:.4f}"]
    ds.save_as(victim)
    with pytest.raises(InputError, match="more than one stack"):
        read_dicom_series(tiny_series)


# ---------------------------------------------------------------- pixel interpretation


def _rewrite(folder: Path, **changes: object) -> None:
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword, value in changes.items():
            setattr(ds, keyword, value(ds) if callable(value) else value)
        ds.save_as(path)


def test_monochrome1_inverted_for_mr_not_for_ct(tiny_series: Path, tiny_ct: Volume) -> None:
    _rewrite(tiny_series, PhotometricInterpretation="MONOCHROME1")
    ct = read_dicom_series(tiny_series)
    np.testing.assert_array_equal(ct.array, tiny_ct.array)  # HU are physical: kept
    _rewrite(tiny_series, Modality="MR")
    mr = read_dicom_series(tiny_series)
    stored = tiny_ct.array + 1024  # the writer's RescaleIntercept is -1024
    np.testing.assert_array_equal(mr.array, (-32768 + 32767 - stored) - 1024)
    assert mr.meta["photometric"] == "MONOCHROME1"


def test_unsigned_pixels_above_32767(tiny_series: Path) -> None:
    values = np.full((24, 32), 40000, dtype=np.uint16)
    _rewrite(
        tiny_series,
        PixelRepresentation=0,
        RescaleIntercept="0",
        PixelData=values.tobytes(),
    )
    volume = read_dicom_series(tiny_series)
    assert float(volume.array.min()) == 40000.0


@pytest.mark.parametrize("signed", [True, False])
def test_bits_above_bits_stored_are_ignored(tiny_series: Path, signed: bool) -> None:
    value = -5 if signed else 2000
    stored = (value & 0x0FFF) | 0x5000  # 12-bit value, garbage (an overlay) in bits 12-15
    _rewrite(
        tiny_series,
        BitsStored=12,
        HighBit=11,
        PixelRepresentation=int(signed),
        RescaleIntercept="0",
        PixelData=np.full((24, 32), stored, dtype=np.uint16).tobytes(),
    )
    volume = read_dicom_series(tiny_series)
    assert set(np.unique(volume.array).tolist()) == {float(value)}
    ds = pydicom.dcmread(next(tiny_series.glob("*.dcm")))
    assert set(np.unique(ds.pixel_array).tolist()) == {value}  # pydicom agrees


def test_palette_colour_becomes_rgb() -> None:
    path = get_testdata_file("examples_palette.dcm")
    volume = read_dicom_series(path)
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    assert volume.channels == 3
    np.testing.assert_array_equal(volume.array[0], expected)


def test_ybr_jpeg_multiframe_becomes_rgb_frames() -> None:
    volume = read_dicom_series(get_testdata_file("examples_ybr_color.dcm"))
    assert volume.array.shape == (30, 240, 320, 3)
    assert any("frames kept in file order" in w for w in volume.warnings)


# ---------------------------------------------------------------- compressed syntaxes


def test_transfer_syntax_without_decoder_is_a_clear_error(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2
    path = tmp_path / "mpeg2.dcm"
    ds.save_as(path)
    with pytest.raises(InputError, match=r"no decoder for transfer syntax MPEG2 Main Profile"):
        read_dicom_series(path)


def test_codestream_claiming_a_huge_frame_is_refused_before_decoding(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    data = bytearray(ds.PixelData)
    sof = data.find(b"\xff\xf7")  # JPEG-LS SOF55: length(2), precision(1), Y(2), X(2)
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    ds.PixelData = bytes(data)
    path = tmp_path / "huge.dcm"
    ds.save_as(path)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"declares 60000 x 60000 x 1.*say 64 x 64"):
            read_dicom_series(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_header_smaller_than_codestream_is_refused(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.Rows = ds.Columns = 32
    path = tmp_path / "small_header.dcm"
    ds.save_as(path)
    with pytest.raises(InputError, match=r"JPEG 2000 frame 1 declares 64 x 64"):
        read_dicom_series(path)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "JPGExtended.dcm",
        "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless, process 14
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
        "image_dfl.dcm",
    ],
)
def test_compressed_transfer_syntaxes_decode(name: str) -> None:
    volume = read_dicom_series(get_testdata_file(name))
    assert volume.array.size and np.isfinite(volume.array).all()
    assert (
        volume.meta["transfer_syntax"]
        == pydicom.dcmread(
            get_testdata_file(name), stop_before_pixels=True
        ).file_meta.TransferSyntaxUID.name
    )


# ---------------------------------------------------------------- limits


def test_limits_are_enforced_and_name_their_field(tiny_series: Path) -> None:
    with pytest.raises(InputError, match=r"slice count 6 exceeds .*max_slices"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_slices=5))
    with pytest.raises(InputError, match=r"Columns 32 exceeds .*max_columns"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_columns=31))
    with pytest.raises(InputError, match=r"Rows 24 exceeds .*max_rows"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_rows=16))
    with pytest.raises(InputError, match=r"exceeds the limit of 4000 \(ReadLimits.max_voxels"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_voxels=4000))
    with pytest.raises(InputError, match=r"max_decoded_bytes"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_decoded_bytes=8000))
    with pytest.raises(InputError, match=r"max_file_bytes"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_file_bytes=1000))
    with pytest.raises(InputError, match=r"more than 3 files"):
        read_dicom_series(tiny_series, limits=ReadLimits(max_files=3))


def test_multiframe_limit_names_number_of_frames(enhanced: Path) -> None:
    with pytest.raises(InputError, match=r"NumberOfFrames 6 exceeds .*max_slices"):
        read_dicom_series(enhanced, limits=ReadLimits(max_slices=4))


@pytest.mark.parametrize("field", ["max_voxels", "max_slices", "max_rows", "max_files"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReadLimits(**{field: 0})


def test_deflate_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.add_new(0x00091010, "OB", b"\x00" * (8 * 2**20))  # 8 MiB of zeros deflate to ~8 kB
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    path = tmp_path / "bomb.dcm"
    ds.save_as(path)
    assert path.stat().st_size < 2**20
    with pytest.raises(InputError, match="inflates beyond the limit of 4194304"):
        read_dicom_series(path, limits=ReadLimits(max_decoded_bytes=4 * 2**20))
    volume = read_dicom_series(path)  # within the default limit it reads
    assert volume.shape == (1, 128, 128)


def test_unreadable_file_in_a_series_folder_is_reported(tiny_series: Path) -> None:
    victim = sorted(tiny_series.glob("*.dcm"))[0]  # the top slice: no gap shows
    victim.write_bytes(victim.read_bytes()[:140])  # DICM prefix, then nothing usable
    shutil.copy(victim, tiny_series / "copy.dcm")
    volume = read_dicom_series(tiny_series)
    assert volume.shape[0] == 5
    assert any(
        w.startswith("2 file(s) start like DICOM but could not be read") for w in volume.warnings
    )
    with pytest.raises(InputError, match="not a readable DICOM file"):
        read_dicom_series(victim)
