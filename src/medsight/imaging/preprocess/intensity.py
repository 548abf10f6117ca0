"""Intensity transforms on numpy arrays (HU in, unitless out).

Pure functions; MONAI's ScaleIntensityRange does the same windowing on tensors, but the
preprocessing contract is applied before any tensor exists (and in processes that never
import torch), so the one-line numpy form lives here.
"""

from __future__ import annotations

import numpy as np

#: Named HU windows as (low, high); the lung preset keeps calcium (> 400 HU) distinct.
WINDOW_PRESETS_HU: dict[str, tuple[float, float]] = {
    "lung": (-1000.0, 400.0),
    "mediastinum": (-160.0, 240.0),
    "bone": (-450.0, 1050.0),
    "brain": (0.0, 80.0),
}


def window_hu(array: np.ndarray, window_hu: tuple[float, float]) -> np.ndarray:
    """Clip HU to ``window_hu`` and scale it linearly to [0, 1] (float32).

    Raises:
        ValueError: the window is empty or reversed.
    """
    low, high = window_hu
    if not high > low:
        raise ValueError(f"window high must exceed low, got {window_hu}")
    out = (np.asarray(array, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)
