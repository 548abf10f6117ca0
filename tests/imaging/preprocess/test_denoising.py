import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.preprocess.denoising import DENOISE_METHODS, denoise, estimate_noise_std

NOISE_STD = 10.0


def _noisy_step(ndim: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (40, 40) if ndim == 2 else (8, 24, 24)
    clean = np.zeros(shape, dtype=np.float32)
    clean[..., shape[-1] // 2 :] = 100.0
    rng = np.random.default_rng(11)
    return clean, (clean + rng.normal(0.0, NOISE_STD, shape)).astype(np.float32)


def _flat_noise_std(array: np.ndarray) -> float:
    """Standard deviation inside each flat half, away from the step and the borders."""
    n = array.shape[-1]
    return float((array[..., 2 : n // 2 - 4].std() + array[..., n // 2 + 4 : -2].std()) / 2)


def _edge_contrast(array: np.ndarray) -> float:
    n = array.shape[-1]
    return float(array[..., n // 2].mean() - array[..., n // 2 - 1].mean())


FILTERS = [m for m in DENOISE_METHODS if m != "none"]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("method", FILTERS)
def test_every_method_lowers_noise(method: str, ndim: int) -> None:
    _, noisy = _noisy_step(ndim)
    out = denoise(noisy, method, sigma_vox=1.5, size_vox=3)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert _flat_noise_std(out) < 0.6 * _flat_noise_std(noisy)


@pytest.mark.parametrize("method", DENOISE_METHODS)
def test_a_one_slice_image_is_filtered_in_2d(method: str) -> None:
    _, noisy = _noisy_step(2)
    out = denoise(noisy[None], method, sigma_vox=1.5, size_vox=3.0)  # sizes as plan.json has them
    np.testing.assert_array_equal(out[0], denoise(noisy, method, sigma_vox=1.5, size_vox=3))
    if method == "none":
        np.testing.assert_array_equal(out[0], noisy)


@pytest.mark.parametrize("ndim", [2, 3])
def test_non_local_means_keeps_the_edge(ndim: int) -> None:
    clean, noisy = _noisy_step(ndim)
    out = denoise(noisy, "nl_means", h_factor=0.8, patch_size=3, patch_distance=3)
    assert _edge_contrast(out) > 80.0
    assert np.abs(out - clean).mean() < 0.6 * np.abs(noisy - clean).mean()


@pytest.mark.parametrize("ndim", [2, 3])
def test_bilateral_keeps_the_edge_that_gaussian_blurs(ndim: int) -> None:
    clean, noisy = _noisy_step(ndim)
    gaussian = denoise(noisy, "gaussian", sigma_vox=1.5)
    bilateral = denoise(noisy, "bilateral", sigma_vox=1.5)
    assert _flat_noise_std(bilateral) < 0.6 * NOISE_STD
    assert _edge_contrast(gaussian) < 60.0  # the step of 100 is smeared over several voxels
    assert _edge_contrast(bilateral) > 90.0
    # and bilateral is closer to the clean image overall
    assert np.abs(bilateral - clean).mean() < np.abs(gaussian - clean).mean()


def test_noise_estimate_ignores_the_edge() -> None:
    _, noisy = _noisy_step(2)
    assert estimate_noise_std(noisy) == pytest.approx(NOISE_STD, rel=0.15)


def test_unknown_method_is_an_input_error() -> None:
    with pytest.raises(InputError):
        denoise(np.zeros((4, 4)), "wavelet")
