"""Denoising filters for 2D ``[y, x]`` and 3D ``[z, y, x]`` arrays, chosen by name.

* ``"gaussian"``: scipy.ndimage ``gaussian_filter`` (``sigma_vox``); smooths noise and edges
  alike.
* ``"median"``: scipy.ndimage ``median_filter`` (``size_vox``); removes impulse noise, keeps
  step edges, rounds thin structures.
* ``"bilateral"``: `medsight.imaging.preprocess.bilateral.bilateral_filter` (``sigma_vox`` spatial,
  ``sigma_intensity`` range); smooths flat regions and keeps edges. Hand-written: see that
  module for why no stack library provides it here.
* ``"nl_means"``: scikit-image's non-local means (``restoration.denoise_nl_means``, fast
  mode; ``h = h_factor * sigma``, sigma from `estimate_noise_std`; ``patch_size`` and
  ``patch_distance`` in voxels); averages voxels whose neighbourhoods look alike, so edges
  and small bright foci survive better than under a Gaussian. The MR denoiser of the plan.

The preprocessing contract calls `denoise` with the method and parameters the plan records.

Sizes are in voxels, not millimetres: give per-axis values for anisotropic volumes (e.g.
``sigma_vox=(0.3, 1.0, 1.0)`` for 5 mm slices of 1 mm pixels). Borders repeat the edge voxel.
Outputs are float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.restoration import denoise_nl_means

from medsight.errors import InputError
from medsight.imaging.preprocess.bilateral import bilateral_filter

DENOISE_METHODS = ("none", "gaussian", "median", "bilateral", "nl_means")


def estimate_noise_std(array: np.ndarray) -> float:
    """Robust estimate of additive noise's standard deviation from neighbour differences.

    The median absolute deviation of differences along the last axis, scaled for a
    Gaussian (1.4826) and for differencing two noisy values (sqrt 2); edges are a small
    fraction of all differences, so they barely move the median.

    Args:
        array: intensities, any shape with a last axis of at least 2.

    Returns:
        The estimated standard deviation, in the array's units (0 for a noise-free image).
    """
    differences = np.diff(np.asarray(array, dtype=np.float64), axis=-1).ravel()
    if differences.size == 0:
        return 0.0
    mad = np.median(np.abs(differences - np.median(differences)))
    return float(1.4826 * mad / np.sqrt(2.0))


def denoise(
    array: np.ndarray,
    method: str = "gaussian",
    *,
    sigma_vox: float | Sequence[float] = 1.0,
    size_vox: int | Sequence[int] = 3,
    sigma_intensity: float | None = None,
    h_factor: float = 0.8,
    patch_size: int = 3,
    patch_distance: int = 3,
) -> np.ndarray:
    """Denoise ``array`` with the filter ``method`` names (or not at all: ``"none"``).

    Args:
        array: intensities, ``[y, x]`` or ``[z, y, x]``; a ``[1, y, x]`` one-slice image is
            filtered in 2D.
        method: one of `DENOISE_METHODS`.
        sigma_vox: Gaussian width in voxels (gaussian, and bilateral's spatial weight),
            one number or one per axis.
        size_vox: window edge in voxels for the median filter, one number or one per axis.
        sigma_intensity: bilateral range width in the array's units; default twice
            `estimate_noise_std` of the array.
        h_factor: non-local means filtering strength in units of the estimated noise
            standard deviation (scikit-image suggests about 0.8 in fast mode).
        patch_size: non-local means patch edge in voxels.
        patch_distance: non-local means search radius in voxels.

    Returns:
        The denoised float32 array, same shape.

    Raises:
        InputError: ``method`` is not one of `DENOISE_METHODS` (it comes from a config or
            the command line).
    """
    values = np.asarray(array, dtype=np.float32)
    if values.ndim == 3 and values.shape[0] == 1 and method != "none":
        return denoise(
            values[0],
            method,
            sigma_vox=sigma_vox,
            size_vox=size_vox,
            sigma_intensity=sigma_intensity,
            h_factor=h_factor,
            patch_size=patch_size,
            patch_distance=patch_distance,
        )[None]
    if method == "none":
        return values
    if method == "gaussian":
        return ndimage.gaussian_filter(values, sigma_vox, mode="nearest")
    if method == "median":
        # plan.json stores numbers as floats; a window edge is a whole number of voxels
        size = int(size_vox) if isinstance(size_vox, int | float) else [int(n) for n in size_vox]
        return ndimage.median_filter(values, size=size, mode="nearest")
    if method == "bilateral":
        if sigma_intensity is None:
            sigma_intensity = max(2.0 * estimate_noise_std(values), 1e-6)
        return bilateral_filter(values, sigma_vox, sigma_intensity)
    if method == "nl_means":
        sigma = estimate_noise_std(values)
        if sigma <= 0:
            return values
        out = denoise_nl_means(
            values,
            patch_size=int(patch_size),
            patch_distance=int(patch_distance),
            h=h_factor * sigma,
            sigma=sigma,
            fast_mode=True,
            channel_axis=None,
        )
        return np.asarray(out, dtype=np.float32)
    raise InputError(f"unknown denoising method {method!r}; choose one of {DENOISE_METHODS}")
