"""A marked voxel keeps its world position: LPS DICOM -> Volume -> NIfTI (RAS) -> back.

The expected position is computed from the DICOM tags of the file holding the mark
(ImagePositionPatient + column index x row direction x column spacing + ...), not from
medsight's own affine, and the NIfTI is also read back by nibabel and SimpleITK.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy.spatial.transform import Rotation

from medsight.imaging.io.ct_writer import StudyIdentity, write_ct_series
from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.io.nifti import read_nifti, write_mask_nifti, write_volume_nifti
from medsight.imaging.io.volume import Volume

MARK_HU = 3000.0
MARK_ZYX = (3, 5, 7)


def _marked_volume(direction: np.ndarray) -> Volume:
    array = np.full((6, 12, 16), -100.0, dtype=np.float32)
    array[MARK_ZYX] = MARK_HU
    return Volume(array, (3.0, 0.9, 1.1), np.array([12.0, -40.0, 75.0]), direction, "CT")


def _world_from_tags(folder: Path) -> np.ndarray:
    """LPS position of the marked pixel, from the tags of the file that holds it."""
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        hits = np.argwhere(pixels == MARK_HU)
        if len(hits):
            row, column = hits[0]
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
            ipp = np.array([float(v) for v in ds.ImagePositionPatient])
            return ipp + iop[:3] * column * column_spacing + iop[3:] * row * row_spacing
    raise AssertionError("mark not found")


def _world(affine: np.ndarray, index_xyz: np.ndarray) -> np.ndarray:
    return (affine @ np.append(index_xyz.astype(float), 1.0))[:3]


DIRECTIONS = {
    "axial": np.eye(3),
    "sagittal": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix(),
}


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_marked_voxel_keeps_world_position(
    name: str, tmp_path: Path, tiny_identity: StudyIdentity
) -> None:
    sitk = pytest.importorskip("SimpleITK")
    folder = tmp_path / "dicom"
    write_ct_series(_marked_volume(DIRECTIONS[name]), tiny_identity, folder)
    expected_lps = _world_from_tags(folder)

    volume = read_dicom_series(folder)
    z, y, x = np.argwhere(volume.array == MARK_HU)[0]
    np.testing.assert_allclose(
        _world(volume.affine_lps(), np.array([x, y, z])), expected_lps, atol=1e-3
    )

    nifti = write_volume_nifti(tmp_path / "v.nii.gz", volume)
    image = nib.load(nifti)
    i, j, k = np.argwhere(np.asarray(image.dataobj) == MARK_HU)[0]
    ras = _world(image.affine, np.array([i, j, k]))
    np.testing.assert_allclose(ras * [-1, -1, 1], expected_lps, atol=1e-3)

    reference = sitk.ReadImage(str(nifti))
    np.testing.assert_allclose(
        reference.TransformIndexToPhysicalPoint((int(i), int(j), int(k))), expected_lps, atol=1e-3
    )

    back = read_nifti(nifti)
    z, y, x = np.argwhere(back.array == MARK_HU)[0]
    np.testing.assert_allclose(
        _world(back.affine_lps(), np.array([x, y, z])), expected_lps, atol=1e-3
    )
    np.testing.assert_allclose(back.affine_ras(), volume.affine_ras(), atol=1e-4)


def test_axial_codes_are_lps_in_dicom_and_kept_in_nifti(
    tmp_path: Path, tiny_identity: StudyIdentity
) -> None:
    folder = tmp_path / "dicom"
    write_ct_series(_marked_volume(np.eye(3)), tiny_identity, folder)
    volume = read_dicom_series(folder)
    assert "".join(nib.aff2axcodes(volume.affine_ras())) == "LPS"
    back = read_nifti(write_volume_nifti(tmp_path / "v.nii.gz", volume))
    assert "".join(nib.aff2axcodes(back.affine_ras())) == "LPS"


def test_gantry_tilt_is_a_sheared_affine_with_exact_positions(
    tmp_path: Path, tiny_identity: StudyIdentity
) -> None:
    folder = tmp_path / "dicom"
    write_ct_series(_marked_volume(np.eye(3)), tiny_identity, folder)
    tilt = np.tan(np.radians(15.0))
    for path in folder.glob("*.dcm"):  # shift each slice along y in proportion to its z
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:.4f}", f"{y + (z - 75.0) * tilt:.4f}", f"{z:.4f}"]
        ds.save_as(path)
    expected_lps = _world_from_tags(folder)
    volume = read_dicom_series(folder)
    assert any("gantry tilt" in w and "15.00 degrees" in w for w in volume.warnings)
    z, y, x = np.argwhere(volume.array == MARK_HU)[0]
    np.testing.assert_allclose(
        _world(volume.affine_lps(), np.array([x, y, z])), expected_lps, atol=1e-3
    )
    assert volume.spacing_mm[0] == pytest.approx(3.0 / np.cos(np.radians(15.0)), rel=1e-4)
    back = read_nifti(write_volume_nifti(tmp_path / "tilt.nii.gz", volume))
    z, y, x = np.argwhere(back.array == MARK_HU)[0]
    np.testing.assert_allclose(
        _world(back.affine_lps(), np.array([x, y, z])), expected_lps, atol=1e-3
    )


def test_mask_written_on_the_volume_grid(tmp_path: Path, tiny_identity: StudyIdentity) -> None:
    folder = tmp_path / "dicom"
    write_ct_series(_marked_volume(DIRECTIONS["oblique"]), tiny_identity, folder)
    volume = read_dicom_series(folder)
    mask = (volume.array == MARK_HU).astype(np.int64) * 2
    path = write_mask_nifti(tmp_path / "mask.nii.gz", mask, volume)
    image = nib.load(path)
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_allclose(image.affine, volume.affine_ras(), atol=1e-5)
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, mask)
    with pytest.raises(ValueError, match="shape"):
        write_mask_nifti(tmp_path / "bad.nii.gz", mask[:-1], volume)
