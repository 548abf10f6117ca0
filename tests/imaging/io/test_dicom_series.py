import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    spec = plan_cohort(2, seed=5)[0]
    volume, _ = case_volume(spec)
    folder = tmp_path_factory.mktemp("series") / "s"
    write_ct_series(volume, spec.identity, folder)
    return volume, spec.identity, folder


def test_round_trip_matches_generator(written) -> None:
    volume, _, folder = written
    read = read_dicom_series(folder)
    assert read.shape == volume.shape
    assert np.abs(read.array - volume.array).max() <= 0.5 + 1e-3  # int16 rounding only
    np.testing.assert_allclose(read.spacing_mm, volume.spacing_mm, rtol=1e-5)
    np.testing.assert_allclose(read.origin_lps, volume.origin_lps, atol=1e-3)
    assert read.modality == "CT"
    assert "PatientName" not in read.meta and "PatientID" not in read.meta


def test_order_comes_from_position_not_file_name(written, tmp_path: Path) -> None:
    volume, _, folder = written
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    rng = np.random.default_rng(0)
    files = sorted(folder.glob("*.dcm"))
    for i, f in zip(rng.permutation(len(files)), files, strict=True):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = int(i) + 1
        ds.save_as(shuffled / f"{i:03d}.dcm")
    read = read_dicom_series(shuffled)
    assert np.abs(read.array - volume.array).max() <= 0.5 + 1e-3


def test_reads_pydicom_ct_small() -> None:
    path = Path(get_testdata_file("CT_small.dcm"))
    volume = read_dicom_series(path)
    ds = pydicom.dcmread(path)
    assert volume.shape == (1, 128, 128)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(volume.array[0], expected)
    assert volume.spacing_mm[1:] == tuple(float(v) for v in ds.PixelSpacing)


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        read_dicom_series(tmp_path / "nope")


def test_non_dicom_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("not an image")
    with pytest.raises(InputError, match="not a DICOM file"):
        read_dicom_series(f)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no DICOM image files"):
        read_dicom_series(tmp_path)


def test_two_series(written, tmp_path: Path) -> None:
    volume, identity, folder = written
    both = _copy(folder, tmp_path / "both" / "a")
    other = StudyIdentity(**{**identity.__dict__, "series_uid": deterministic_uid("other")})
    write_ct_series(volume, other, tmp_path / "both" / "b")
    with pytest.raises(InputError, match="holds 2 series"):
        read_dicom_series(both.parent)


def test_slices_of_different_sizes(written, tmp_path: Path) -> None:
    _, _, folder = written
    bad = _copy(folder, tmp_path / "bad")
    victim = sorted(bad.glob("*.dcm"))[5]
    ds = pydicom.dcmread(victim)
    ds.Rows, ds.Columns = 64, 64
    ds.PixelData = np.zeros((64, 64), np.int16).tobytes()
    ds.save_as(victim)
    with pytest.raises(InputError, match=r"slice is 64x64") as info:
        read_dicom_series(bad)
    assert victim.name in str(info.value)


def test_duplicate_position(written, tmp_path: Path) -> None:
    _, _, folder = written
    bad = _copy(folder, tmp_path / "dup")
    files = sorted(bad.glob("*.dcm"))
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient = pydicom.dcmread(files[4]).ImagePositionPatient
    ds.save_as(files[3])
    with pytest.raises(InputError, match="share one ImagePositionPatient"):
        read_dicom_series(bad)


@pytest.mark.parametrize("spacing", [["nan", "1"], ["0", "1"], ["-1", "1"], ["inf", "1"]])
def test_bad_pixel_spacing(written, tmp_path: Path, spacing: list[str]) -> None:
    _, _, folder = written
    bad = _copy(folder, tmp_path / "spacing")
    victim = sorted(bad.glob("*.dcm"))[0]
    ds = pydicom.dcmread(victim)
    ds.PixelSpacing = spacing
    ds.save_as(victim)
    with pytest.raises(InputError, match="PixelSpacing"):
        read_dicom_series(bad)


def test_truncated_pixel_data(written, tmp_path: Path) -> None:
    _, _, folder = written
    bad = _copy(folder, tmp_path / "trunc")
    victim = sorted(bad.glob("*.dcm"))[2]
    ds = pydicom.dcmread(victim)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(victim)
    with pytest.raises(InputError, match="pixel data"):
        read_dicom_series(bad)
