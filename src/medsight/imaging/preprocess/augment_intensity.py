"""Deterministic intensity augmentations: additive noise, gamma, multiplicative bias field.

Pure functions of the array and their parameters (noise takes its seed as a parameter), so
a random augmentation records only parameters and replays bit for bit (see
`augment_random`, `augment_replay`). Arrays are 2D ``[y, x]`` or 3D ``[z, y, x]``, any
units (apply after normalisation so that noise levels mean the same for every image);
outputs are float32. Label maps never go through these (``label=True`` skips them).

numpy rather than MONAI's ``AdjustContrast`` / ``RandGaussianNoise`` / ``RandBiasField``:
MONAI returns torch MetaTensors even for numpy input, its noise and bias field exist only in
random forms that draw their own values (the bias field's generator is private), and these
are a few lines each. `gamma` uses exactly MONAI ``AdjustContrast``'s formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.polynomial import legendre


def add_noise(array: np.ndarray, std: float, seed: int) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``std`` drawn from ``seed``.

    Args:
        array: intensities.
        std: noise standard deviation, in the array's units.
        seed: seed of the numpy generator that draws the noise.

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: ``std`` is negative.
    """
    if std < 0:
        raise ValueError(f"noise std must be >= 0, got {std}")
    values = np.asarray(array, dtype=np.float32)
    noise = np.random.default_rng(seed).standard_normal(values.shape, dtype=np.float32)
    return values + np.float32(std) * noise


def gamma(array: np.ndarray, gamma: float) -> np.ndarray:
    """Gamma contrast change within the array's own intensity range.

    ``((x - min) / (max - min + 1e-7)) ** gamma * (max - min) + min``, MONAI's
    ``AdjustContrast``: the extremes stay put, ``gamma`` > 1 darkens mid-tones and
    ``gamma`` < 1 brightens them.

    Args:
        array: intensities.
        gamma: positive exponent (1 keeps the image up to rounding).

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: ``gamma`` is not positive.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    values = np.asarray(array, dtype=np.float64)
    low = values.min()
    span = values.max() - low
    out = ((values - low) / (span + 1e-7)) ** gamma * span + low
    return out.astype(np.float32)


def bias_field_map(shape: Sequence[int], coefficients: Any) -> np.ndarray:
    """The multiplicative field ``exp(sum c_ijk P_i(z) P_j(y) P_k(x))`` over ``shape``.

    Legendre polynomials ``P`` of each axis' coordinate scaled to [-1, 1], as in MONAI's
    and TorchIO's bias-field augmentations.

    Args:
        shape: array shape, 2D or 3D.
        coefficients: nested list (or array) of shape ``(degree + 1,) * ndim``; entry
            ``[i][j][k]`` weighs ``P_i(z) P_j(y) P_k(x)``.

    Returns:
        float64 field of ``shape``, positive (1 where the polynomial is 0).

    Raises:
        ValueError: the coefficient array's dimensions do not match ``shape``.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != len(shape) or len(shape) not in (2, 3):
        raise ValueError(
            f"coefficients of shape {c.shape} do not fit an array of shape {tuple(shape)}"
        )
    axes = [np.linspace(-1.0, 1.0, int(n)) for n in shape]
    if len(axes) == 2:
        poly = legendre.leggrid2d(axes[0], axes[1], c)
    else:
        poly = legendre.leggrid3d(axes[0], axes[1], axes[2], c)
    return np.exp(poly)


def bias_field(array: np.ndarray, coefficients: Any) -> np.ndarray:
    """Multiply by a smooth bias field (MR intensity inhomogeneity), see `bias_field_map`.

    Args:
        array: intensities, ``[y, x]`` or ``[z, y, x]``.
        coefficients: Legendre coefficients of shape ``(degree + 1,) * ndim``.

    Returns:
        float32 array of the same shape.
    """
    values = np.asarray(array, dtype=np.float64)
    return (values * bias_field_map(values.shape, coefficients)).astype(np.float32)
