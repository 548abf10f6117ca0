"""medsight's readers against independent ones on real files shipped inside pydicom/nibabel.

SimpleITK (GDCM, ITK's NIfTI IO) and raw pydicom/nibabel must agree with us on pixels,
in-plane spacing, orientation and origin. Known, intended differences are spelled out:
SimpleITK reports 1 mm slice spacing for a single slice (we use SliceThickness), does not
apply RT Dose's DoseGridScaling, and decodes lossy 12-bit JPEG with another decoder
(rounding differs by at most 1).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.io.nifti import read_nifti
from medsight.imaging.io.read_image import read_image

sitk = pytest.importorskip("SimpleITK")

# file -> largest allowed absolute pixel difference against SimpleITK
DICOM_FILES = {
    "CT_small.dcm": 0.0,
    "MR_small.dcm": 0.0,
    "MR_small_RLE.dcm": 0.0,
    "MR_small_jpeg_ls_lossless.dcm": 0.0,
    "MR_small_jp2klossless.dcm": 0.0,
    "MR_small_bigendian.dcm": 0.0,
    "MR_small_expb.dcm": 0.0,
    "MR_small_implicit.dcm": 0.0,
    "MR_small_padded.dcm": 0.0,
    "JPGExtended.dcm": 1.0,  # lossy 12-bit JPEG: decoders round differently
    "693_J2KI.dcm": 0.0,
    "JPEG2000.dcm": 0.0,
    "J2K_pixelrep_mismatch.dcm": 0.0,
    "JPEGLSNearLossless_08.dcm": 0.0,
    "JPEGLSNearLossless_16.dcm": 0.0,
    "image_dfl.dcm": 0.0,  # deflated explicit VR little endian
    "examples_overlay.dcm": 0.0,  # 12 of 16 bits stored; overlay bits above must be masked
    "rtdose.dcm": 0.0,  # multi-frame, GridFrameOffsetVector
    "rtdose_rle.dcm": 0.0,
}
NIBABEL_DATA = Path(os.path.dirname(nib.__file__)) / "tests" / "data"
NIFTI_FILES = ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii"]


def _sitk(path: str) -> tuple[np.ndarray, object]:
    image = sitk.ReadImage(path)
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    return (array[np.newaxis] if array.ndim == 2 else array), image


@pytest.mark.parametrize("name", sorted(DICOM_FILES))
def test_dicom_matches_simpleitk(name: str) -> None:
    path = get_testdata_file(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = read_dicom_series(path)
        theirs, image = _sitk(path)
    if name.startswith("rtdose"):
        theirs = theirs * float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)
    assert volume.array.shape == theirs.shape
    np.testing.assert_allclose(volume.array, theirs, rtol=1e-6, atol=DICOM_FILES[name])
    sx, sy, sz = image.GetSpacing()
    np.testing.assert_allclose(volume.spacing_mm[1:], (sy, sx), rtol=1e-6)
    if volume.shape[0] > 1:
        np.testing.assert_allclose(volume.spacing_mm[0], sz, rtol=1e-6)
    np.testing.assert_allclose(
        volume.direction, np.reshape(image.GetDirection(), (3, 3)), atol=1e-6
    )
    np.testing.assert_allclose(volume.origin_lps, image.GetOrigin(), atol=1e-4)


@pytest.mark.parametrize(
    "name", sorted(n for n in DICOM_FILES if not n.startswith(("rtdose", "JPEGLS", "image_dfl")))
)
def test_dicom_matches_raw_pydicom(name: str) -> None:
    """Stored values times RescaleSlope plus RescaleIntercept, frame for frame."""
    path = get_testdata_file(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array.astype(np.float64)
    expected = expected * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    volume = read_dicom_series(path)
    np.testing.assert_allclose(volume.array[0], expected, rtol=1e-6)
    np.testing.assert_allclose(volume.spacing_mm[1:], [float(v) for v in ds.PixelSpacing])
    if "ImageOrientationPatient" in ds:
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        np.testing.assert_allclose(volume.direction[:, 0], iop[:3], atol=1e-4)
        np.testing.assert_allclose(volume.direction[:, 1], iop[3:], atol=1e-4)
        np.testing.assert_allclose(
            volume.origin_lps, [float(v) for v in ds.ImagePositionPatient], atol=1e-6
        )


def test_rtdose_is_in_gray_with_frames_along_the_grid() -> None:
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    volume = read_dicom_series(path)
    expected = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    np.testing.assert_allclose(volume.array, expected, rtol=1e-6)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    assert volume.spacing_mm[0] == pytest.approx(offsets[1] - offsets[0])
    assert volume.meta["kind"] == "dicom-multiframe"


def test_one_bit_segmentation_matches_pydicom() -> None:
    path = get_testdata_file("liver_1frame.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pydicom.dcmread(path).pixel_array
        volume = read_dicom_series(path)
    np.testing.assert_array_equal(volume.array[0], expected)
    assert volume.spacing_mm[1:] == pytest.approx((0.810547, 0.810547))


@pytest.mark.parametrize("name", NIFTI_FILES)
def test_nifti_matches_simpleitk_and_nibabel(name: str) -> None:
    path = str(NIBABEL_DATA / name)
    volume = read_image(path)
    theirs, image = _sitk(path)
    np.testing.assert_allclose(volume.array, theirs, rtol=1e-6)
    np.testing.assert_allclose(volume.spacing_mm[::-1], image.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(
        volume.direction, np.reshape(image.GetDirection(), (3, 3)), atol=1e-5
    )
    np.testing.assert_allclose(volume.origin_lps, image.GetOrigin(), atol=1e-4)
    reference = nib.load(path)
    np.testing.assert_allclose(volume.affine_ras(), reference.affine, atol=1e-5)
    np.testing.assert_array_equal(
        volume.array, np.asarray(reference.dataobj, dtype=np.float32).transpose(2, 1, 0)
    )


def test_nifti2_volume_of_4d_file_matches_nibabel() -> None:
    path = NIBABEL_DATA / "example_nifti2.nii.gz"
    reference = nib.load(path)
    assert isinstance(reference, nib.Nifti2Image)
    volume = read_nifti(path, volume=1)
    expected = np.asarray(reference.dataobj, dtype=np.float32)[..., 1].transpose(2, 1, 0)
    np.testing.assert_array_equal(volume.array, expected)
    np.testing.assert_allclose(volume.affine_ras(), reference.affine, atol=1e-5)
    assert volume.meta["nifti_version"] == 2


@pytest.mark.parametrize("image_type", [nib.Nifti1Image, nib.Nifti2Image])
def test_oblique_nifti_matches_simpleitk(tmp_path: Path, image_type: type) -> None:
    """A permuted, flipped axis order; SimpleITK reads NIfTI-1 only, so v2 is compared to v1."""
    rng = np.random.default_rng(3)
    data = rng.normal(size=(9, 7, 5)).astype(np.float32)
    affine = np.array(
        [[0.0, 0.0, 2.5, 10.0], [-0.8, 0.0, 0.0, 20.0], [0.0, 1.2, 0.0, -5.0], [0, 0, 0, 1]]
    )
    for cls, name in ((nib.Nifti1Image, "v1.nii.gz"), (image_type, "x.nii.gz")):
        image = cls(data, affine)
        image.set_sform(affine, code=1)
        image.set_qform(affine, code=1)
        nib.save(image, tmp_path / name)
    volume = read_image(tmp_path / "x.nii.gz")
    theirs, reference = _sitk(str(tmp_path / "v1.nii.gz"))
    np.testing.assert_allclose(volume.array, theirs, rtol=1e-6)
    np.testing.assert_allclose(volume.origin_lps, reference.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(
        volume.direction, np.reshape(reference.GetDirection(), (3, 3)), atol=1e-6
    )
    np.testing.assert_allclose(volume.affine_ras(), affine, atol=1e-6)
    assert "".join(nib.aff2axcodes(volume.affine_ras())) == "PSR"
    assert volume.meta["nifti_version"] == (2 if image_type is nib.Nifti2Image else 1)
