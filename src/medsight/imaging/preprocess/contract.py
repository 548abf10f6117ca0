"""The preprocessing contract: what every volume goes through before a model sees it.

A run saves its `PreprocessContract` in ``model.json``; training, evaluation and
``medsight predict`` all call `apply_contract` with it, so inference never guesses.
Steps: resample to ``spacing_mm`` (z, y, x), HU window to [0, 1], crop/pad to ``shape``
around the bounding box of the lungs (air enclosed by the body), or of the body when no
enclosed air is found; with ``mask_outside_lungs``, voxels outside the lung mask are set to
0 (air), so the model sees lung fields only (see `lung_mask`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.geometry import (
    crop_or_pad,
    foreground_center,
    resample_to_spacing,
)
from medsight.imaging.preprocess.intensity import window_hu
from medsight.imaging.preprocess.lung_mask import lung_mask

BODY_THRESHOLD_HU = -500.0


class PreprocessContract(BaseModel):
    """Frozen description of the preprocessing a model was trained with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spacing_mm: tuple[float, float, float] = (5.0, 3.0, 3.0)
    #: "window": clip to ``window_hu`` and scale to [0, 1]; "zscore": clip to ``window_hu``,
    #: subtract ``mean`` and divide by ``std`` (nnU-Net's CT scheme, used for segmentation)
    normalisation: Literal["window", "zscore"] = "window"
    window_hu: tuple[float, float] = (-1000.0, 400.0)
    mean: float = 0.0
    std: float = 1.0
    #: output size; None keeps the resampled size (segmentation works on patches)
    shape: tuple[int, int, int] | None = (40, 72, 104)
    crop_to: Literal["lungs", "body"] = "lungs"
    mask_outside_lungs: bool = True
    modality: str = "CT"

    @field_validator("spacing_mm")
    @classmethod
    def _positive_spacing(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(np.isfinite(s) and s > 0 for s in v):
            raise ValueError("spacing_mm must be finite and positive")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: float) -> float:
        if not (np.isfinite(v) and v > 0):
            raise ValueError("std must be finite and positive")
        return v


def background_value(contract: PreprocessContract) -> float:
    """The model-unit value of air (what masking and padding fill with)."""
    if contract.normalisation == "window":
        return 0.0
    return float((contract.window_hu[0] - contract.mean) / contract.std)


def apply_contract(volume: Volume, contract: PreprocessContract) -> np.ndarray:
    """Turn a HU volume into the float32 array the model expects (``contract.shape`` if set)."""
    array = resample_to_spacing(volume.array, volume.spacing_mm, contract.spacing_mm)
    lungs = lung_mask(array, BODY_THRESHOLD_HU) if contract.crop_to == "lungs" else None
    has_lungs = lungs is not None and bool(lungs.any())
    center = None
    if contract.shape is not None:  # only a fixed-size crop needs a centre
        center = (
            foreground_center(lungs.astype(np.float32), 0.5)  # type: ignore[union-attr]
            if has_lungs
            else foreground_center(array, BODY_THRESHOLD_HU)
        )
    background = background_value(contract)
    if contract.normalisation == "window":
        array = window_hu(array, contract.window_hu)
    else:
        low, high = contract.window_hu
        array = (np.clip(array, low, high) - np.float32(contract.mean)) / np.float32(contract.std)
    if contract.mask_outside_lungs and has_lungs:
        array = np.where(lungs, array, np.float32(background)).astype(np.float32)  # type: ignore[arg-type]
    if contract.shape is None:
        return array.astype(np.float32, copy=False)
    return crop_or_pad(array, contract.shape, center, fill=background)
