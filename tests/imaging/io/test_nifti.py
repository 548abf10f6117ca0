"""NIfTI reading refuses what would give a wrong geometry; writing keeps the affine."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.io.limits import ReadLimits
from medsight.imaging.io.nifti import read_nifti, write_nifti, write_volume_nifti
from medsight.imaging.io.volume import Volume

AFFINE = np.array([[-0.9, 0, 0, 10.0], [0, 1.1, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])


def _save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE, version: int = 1) -> Path:
    cls = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    image = cls(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, path)
    return path


def test_round_trip_keeps_values_affine_and_dtype(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    array = rng.normal(size=(5, 6, 7)).astype(np.float32)
    path = write_nifti(tmp_path / "a.nii.gz", array, AFFINE)
    volume = read_nifti(path)
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine_ras(), AFFINE, atol=1e-6)
    assert volume.spacing_mm == pytest.approx((2.5, 1.1, 0.9))
    assert nib.load(path).get_data_dtype() == np.float32
    again = write_volume_nifti(tmp_path / "b.nii.gz", volume)
    np.testing.assert_allclose(nib.load(again).affine, AFFINE, atol=1e-6)


def test_writer_validates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3D"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2)), AFFINE)
    with pytest.raises(ValueError, match="non-finite"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2, 2)), AFFINE * np.nan)
    with pytest.raises(ValueError, match="not invertible"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2, 2)), np.diag([1.0, 0, 1, 1]))
    assert not list(tmp_path.iterdir())  # nothing half-written
    path = write_nifti(tmp_path / "m.nii.gz", np.ones((2, 2, 2), bool), AFFINE)
    assert nib.load(path).get_data_dtype() == np.uint8
    colour = Volume(np.zeros((1, 2, 2, 3), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="colour"):
        write_volume_nifti(tmp_path / "c.nii.gz", colour)


def test_2d_image_is_one_slice_and_single_volume_4d_is_squeezed(tmp_path: Path) -> None:
    two_d = read_nifti(_save(tmp_path / "2d.nii", np.arange(12.0).reshape(3, 4)))
    assert two_d.shape == (1, 4, 3)
    squeezed = read_nifti(_save(tmp_path / "4d.nii", np.zeros((3, 4, 5, 1))))
    assert squeezed.shape == (5, 4, 3)


def test_4d_needs_a_volume_index(tmp_path: Path) -> None:
    path = _save(tmp_path / "4d.nii.gz", np.arange(120.0).reshape(2, 3, 4, 5), version=2)
    with pytest.raises(InputError, match=r"holds several volumes .* --volume N") as err:
        read_nifti(path)
    assert "read_nifti(" not in str(err.value)  # the hint is a command, not a Python call
    with pytest.raises(InputError, match=r"volume 5 is outside 0..4"):
        read_nifti(path, volume=5)
    picked = read_nifti(path, volume=3)
    np.testing.assert_array_equal(
        picked.array, np.arange(120.0).reshape(2, 3, 4, 5)[..., 3].transpose(2, 1, 0)
    )
    assert (picked.meta["n_volumes"], picked.meta["volume"]) == (5, 3)


def test_a_3d_image_has_only_volume_0(tmp_path: Path) -> None:
    path = _save(tmp_path / "3d.nii", np.arange(24.0).reshape(2, 3, 4))
    assert read_nifti(path, volume=0).shape == (4, 3, 2)
    assert "n_volumes" not in read_nifti(path, volume=0).meta
    with pytest.raises(InputError, match=r"volume 1 is outside 0..0"):
        read_nifti(path, volume=1)


@pytest.mark.parametrize("bad", ["nan", "zero"])
def test_broken_affine_is_refused(tmp_path: Path, bad: str) -> None:
    path = _save(tmp_path / "a.nii", np.zeros((3, 3, 3)))
    image = nib.load(path)
    header = image.header.copy()
    if bad == "nan":
        header["srow_x"] = [np.nan, 0, 0, 0]
    else:
        header["srow_x"] = [0, 0, 0, 0]
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3)), None, header), path)
    with pytest.raises(InputError, match=r"NIfTI affine .* (non-finite|not invertible)"):
        read_nifti(path)


def test_header_claiming_a_huge_image_is_refused_before_reading(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.nii", np.zeros((4, 4, 4), np.int16))
    raw = bytearray(path.read_bytes())
    raw[42:48] = np.array([30000, 30000, 30000], "<i2").tobytes()  # dim[1..3]
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"dim\[2\] 30000 exceeds the limit"):
        read_nifti(path)
    with pytest.raises(InputError, match=r"max_voxels"):
        read_nifti(_save(tmp_path / "b.nii", np.zeros((8, 8, 8))), ReadLimits(max_voxels=100))


def test_truncated_and_non_nifti_files(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.nii.gz", np.zeros((8, 8, 8), np.float32))
    data = gzip.decompress(path.read_bytes())
    (tmp_path / "t.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read NIfTI data"):
        read_nifti(tmp_path / "t.nii")
    (tmp_path / "x.nii").write_bytes(b"not nifti at all" * 30)
    with pytest.raises(InputError, match="not a readable NIfTI"):
        read_nifti(tmp_path / "x.nii")
    with pytest.raises(InputError, match="no such file"):
        read_nifti(tmp_path / "missing.nii")


def test_missing_sform_and_qform_is_a_warning(tmp_path: Path) -> None:
    image = nib.Nifti1Image(np.zeros((3, 3, 3)), None)
    image.header.set_zooms((2.0, 2.0, 2.0))
    nib.save(image, tmp_path / "a.nii")
    volume = read_nifti(tmp_path / "a.nii")
    assert any("no sform/qform" in w for w in volume.warnings)
    assert volume.spacing_mm == (2.0, 2.0, 2.0)
