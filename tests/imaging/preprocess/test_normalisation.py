import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.preprocess.normalisation import percentile_normalise, zscore_normalise


def _mr_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    body = np.zeros((8, 32, 32), dtype=bool)
    body[:, 6:26, 5:27] = True
    image = np.where(body, rng.normal(400.0, 60.0, body.shape), rng.normal(5.0, 2.0, body.shape))
    return image.astype(np.float32), body


@pytest.mark.parametrize("use_mask", [True, False])
def test_zscore_of_selected_region_is_standard(use_mask: bool) -> None:
    image, body = _mr_like()
    out = zscore_normalise(image, body if use_mask else None)
    region = out[body] if use_mask else out
    assert out.dtype == np.float32 and out.shape == image.shape
    assert abs(float(region.mean())) < 1e-4
    assert abs(float(region.std()) - 1.0) < 1e-4
    if use_mask:  # the air outside is far below the body's mean
        assert out[~body].mean() < -5


def test_zscore_of_flat_image_is_zero() -> None:
    np.testing.assert_array_equal(zscore_normalise(np.full((4, 4), 7.0)), 0.0)


@pytest.mark.parametrize("use_mask", [True, False])
def test_percentile_normalise_maps_percentiles_to_unit_range(use_mask: bool) -> None:
    image, body = _mr_like()
    mask = body if use_mask else None
    out = percentile_normalise(image, 1.0, 99.0, mask)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    selected = out[body] if use_mask else out.ravel()
    # about 1% of the selected voxels sit at each clip value
    assert 0.005 < np.mean(selected == 0.0) < 0.02
    assert 0.005 < np.mean(selected == 1.0) < 0.02
    if use_mask:
        assert (out[~body] == 0.0).all()


def test_normalisation_rejects_empty_mask_and_bad_percentiles() -> None:
    image, body = _mr_like()
    with pytest.raises(InputError):
        zscore_normalise(image, np.zeros_like(body))
    with pytest.raises(InputError):
        percentile_normalise(image, mask=np.zeros_like(body))
    with pytest.raises(ValueError):
        percentile_normalise(image, 99.0, 1.0)
