"""The modality is settled before normalisation: manifest, DICOM header, else intensities."""

import numpy as np
import pytest

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.modality import infer_modality, normalisation_scheme


def _volume(array: np.ndarray, modality: str = "OT", kind: str = "nifti", **meta) -> Volume:
    return Volume(
        array.astype(np.float32), (1.0, 1.0, 1.0), modality=modality, meta={"kind": kind, **meta}
    )


def _ct_like() -> np.ndarray:
    array = np.full((6, 20, 20), -1000.0)
    array[:, 4:16, 4:16] = 40.0
    return array


def _mr_like() -> np.ndarray:
    array = np.zeros((6, 20, 20))
    array[:, 4:16, 4:16] = 900.0
    return array


@pytest.mark.parametrize(
    ("volume", "declared", "expected", "source"),
    [
        (_volume(_mr_like()), "mr", "MR", "manifest"),  # the user's word wins...
        (_volume(_ct_like(), modality="CT"), "MR", "MR", "manifest"),  # ...even over DICOM
        (_volume(_mr_like(), modality="MR"), "", "MR", "DICOM"),
        (_volume(_mr_like(), modality="CT"), "", "CT", "DICOM"),  # the header, not the values
        (_volume(_ct_like()), "", "CT", "air near -1000"),
        (_volume(_mr_like()), "", "MR", "no air near -1000"),
        (_volume(_mr_like()[:1], kind="png", bits=16), "", "DX", "16-bit raster"),
        (_volume(_mr_like()[:1]), "", "MR", "no air"),  # a one-slice NIfTI is not a PNG
    ],
)
def test_modality_and_its_source(volume: Volume, declared: str, expected: str, source: str) -> None:
    modality, where = infer_modality(volume, declared)
    assert modality == expected and source in where


def test_each_modality_family_gets_its_scheme() -> None:
    assert normalisation_scheme("CT", one_slice=False) == "hu"
    assert normalisation_scheme("CT", one_slice=True) == "hu"
    assert normalisation_scheme("MR", one_slice=False) == "image_zscore"
    assert normalisation_scheme("PT", one_slice=False) == "image_zscore"
    for xray in ("DX", "CR", "MG"):
        assert normalisation_scheme(xray, one_slice=True) == "image_percentile"
    assert normalisation_scheme("MR", one_slice=True) == "image_percentile"
