import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.preprocess.normalisation import (
    foreground_mask,
    image_zscore,
    percentile_normalise,
    zscore_normalise,
)


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


def _head(scale: float, offset: float = 0.0) -> np.ndarray:
    """A bright shell (scalp) around dark bone and mid-grey brain, in air; then scaled."""
    z, y, x = np.mgrid[0:10, 0:40, 0:36]
    rho = np.sqrt(((y - 20) / 16) ** 2 + ((x - 18) / 14) ** 2)
    image = np.zeros(z.shape)
    image[rho < 1.0] = 1.0  # scalp
    image[rho < 0.85] = 0.05  # bone, darker than the threshold
    image[rho < 0.7] = 0.6  # brain
    rng = np.random.default_rng(0)
    return (image + rng.normal(0.0, 0.01, image.shape)) * scale + offset


def test_foreground_keeps_what_the_body_encloses() -> None:
    image = _head(1.0)
    mask = foreground_mask(image)
    z, y, x = np.mgrid[0:10, 0:40, 0:36]
    inside = np.sqrt(((y - 20) / 16) ** 2 + ((x - 18) / 14) ** 2) < 0.95
    assert mask[inside].all()  # the dark bone ring is inside the head, not background
    assert not mask[:, :2].any() and not mask[:, :, :2].any()
    assert foreground_mask(np.full((4, 8, 8), 3.0)).all()  # flat: nothing to remove


def test_image_zscore_ignores_the_scan_scale() -> None:
    out, mask = image_zscore(_head(1.0))
    scaled, scaled_mask = image_zscore(_head(37.0, offset=250.0))
    np.testing.assert_array_equal(mask, scaled_mask)
    np.testing.assert_allclose(out, scaled, atol=1e-4)
    assert abs(float(out[mask].mean())) < 1e-4 and abs(float(out[mask].std()) - 1) < 1e-3
    assert (out[~mask] == 0).all()  # background is 0 in every image


def test_foreground_ignores_noise_specks_in_the_air() -> None:
    image = _head(1.0)
    image[3, 2, 2] = image[7, 38, 33] = 0.9  # two bright noise voxels far outside the head
    mask = foreground_mask(image)
    assert not mask[3, 2, 2] and not mask[7, 38, 33]
    assert mask[5, 20, 18]
