"""The preprocessing contract: what every image goes through before a model sees it.

A run saves its `PreprocessContract` in ``model.json``; training, evaluation and
``medsight predict`` all call `apply_contract` with it, so inference never guesses. Steps,
in order:

1. reorient to ``orientation`` (axis codes, e.g. ``"LPS"``; None keeps the array as read):
   a permutation and flips, no interpolation (`orientation.reorient`);
2. resample to ``spacing_mm`` (z, y, x);
3. denoise with ``denoise`` and ``denoise_params`` (`denoising.denoise`; ``"none"`` skips);
4. find the crop centre: the lungs (air enclosed by the body, CT only), else the body
   (CT: above -500 HU), the foreground (`normalisation.foreground_mask`) or the array
   centre, as ``crop_to`` says;
5. normalise: ``"window"`` clips HU to ``window_hu`` and scales to [0, 1]; ``"zscore"``
   clips to ``window_hu`` and applies the dataset's ``mean``/``std`` (nnU-Net's CT scheme);
   ``"image_zscore"`` (MR) clips to ``percentiles`` of the image's own foreground, z-scores
   with its mean/std and sets the background to 0; ``"image_percentile"`` (X-ray) maps the
   image's own ``percentiles`` to [0, 1];
6. with ``mask_outside_lungs``, voxels outside the lung mask are set to the background
   value (air), so the model sees lung fields only (see `lung_mask`);
7. crop/pad to ``shape`` around the centre (padding with the background value).

Arrays are ``[z, y, x]``. A 2D contract (``shape`` of two numbers, for one-slice images
such as X-rays) works on the ``[1, y, x]`` image and returns ``[y, x]``, what a 2D network
takes. Units: mm, HU for CT.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.denoising import denoise
from medsight.imaging.preprocess.geometry import (
    crop_or_pad,
    foreground_center,
    resample_to_spacing,
)
from medsight.imaging.preprocess.intensity import window_hu
from medsight.imaging.preprocess.lung_mask import lung_mask
from medsight.imaging.preprocess.normalisation import (
    foreground_mask,
    image_zscore,
    percentile_normalise,
)
from medsight.imaging.preprocess.orientation import orientation_code, reorient

BODY_THRESHOLD_HU = -500.0

Normalisation = Literal["window", "zscore", "image_zscore", "image_percentile"]
Denoiser = Literal["none", "gaussian", "median", "bilateral", "nl_means"]


class PreprocessContract(BaseModel):
    """Frozen description of the preprocessing a model was trained with.

    Defaults are those of contracts written before a field existed, so an older
    ``model.json`` still preprocesses exactly as it did.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spacing_mm: tuple[float, float, float] = (5.0, 3.0, 3.0)
    #: axis codes of the array's (x, y, z) after reorientation; None: as read
    orientation: str | None = None
    denoise: Denoiser = "none"
    #: keyword arguments of `denoising.denoise` (sigma_vox, size_vox, h_factor, ...)
    denoise_params: dict[str, float] = {}
    #: see the module docstring, step 5
    normalisation: Normalisation = "window"
    window_hu: tuple[float, float] = (-1000.0, 400.0)
    mean: float = 0.0
    std: float = 1.0
    #: percentiles of each image's own intensities (image_zscore, image_percentile)
    percentiles: tuple[float, float] = (0.5, 99.5)
    #: output size, ``(z, y, x)`` or ``(y, x)`` for 2D models; None keeps the resampled size
    #: (segmentation works on patches)
    shape: tuple[int, int] | tuple[int, int, int] | None = (40, 72, 104)
    crop_to: Literal["lungs", "body", "foreground", "center"] = "lungs"
    mask_outside_lungs: bool = True
    modality: str = "CT"

    @field_validator("spacing_mm")
    @classmethod
    def _positive_spacing(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(np.isfinite(s) and s > 0 for s in v):
            raise ValueError("spacing_mm must be finite and positive")
        return v

    @field_validator("shape")
    @classmethod
    def _positive_shape(
        cls, v: tuple[int, int] | tuple[int, int, int] | None
    ) -> tuple[int, int] | tuple[int, int, int] | None:
        if v is not None and min(v) < 1:
            raise ValueError("shape must be positive")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: float) -> float:
        if not (np.isfinite(v) and v > 0):
            raise ValueError("std must be finite and positive")
        return v

    @field_validator("percentiles")
    @classmethod
    def _ordered_percentiles(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1] <= 100.0:
            raise ValueError("percentiles must be (low, high) with 0 <= low < high <= 100")
        return v

    @field_validator("orientation")
    @classmethod
    def _axis_codes(cls, v: str | None) -> str | None:
        pairs = ({"L", "R"}, {"A", "P"}, {"S", "I"})
        if v is not None and (
            len(v) != 3 or any(sum(c in pair for c in v.upper()) != 1 for pair in pairs)
        ):
            raise ValueError("orientation must be three axis codes, one of L/R, A/P, S/I")
        return None if v is None else v.upper()


def background_value(contract: PreprocessContract) -> float:
    """The model-unit value of air (what masking and padding fill with)."""
    if contract.normalisation == "zscore":
        return float((contract.window_hu[0] - contract.mean) / contract.std)
    return 0.0


def canonical_volume(volume: Volume, contract: PreprocessContract) -> Volume:
    """``volume`` in the contract's orientation (itself when it already is, or None).

    Whoever maps model-grid results (heatmaps) back onto an input must start from this
    volume: its affine is the one to write them with.
    """
    if contract.orientation is None or orientation_code(volume) == contract.orientation:
        return volume
    return reorient(volume, contract.orientation)


def crop_center(
    array: np.ndarray, contract: PreprocessContract, lungs: np.ndarray | None = None
) -> tuple[float, float, float]:
    """The voxel the ``contract.shape`` box is centred on, in the resampled array.

    Args:
        array: the resampled (and denoised) image, before normalisation.
        contract: the contract; ``crop_to`` picks the structure.
        lungs: the lung mask of ``array`` when ``crop_to`` is ``"lungs"`` (computed here
            when not given).
    """
    if contract.crop_to == "lungs":
        lungs = lung_mask(array, BODY_THRESHOLD_HU) if lungs is None else lungs
        if lungs.any():
            return foreground_center(lungs.astype(np.float32), 0.5)
        return foreground_center(array, BODY_THRESHOLD_HU)
    if contract.crop_to == "body":
        return foreground_center(array, BODY_THRESHOLD_HU)
    if contract.crop_to == "foreground":
        return foreground_center(foreground_mask(array).astype(np.float32), 0.5)
    z, y, x = ((n - 1) / 2 for n in array.shape)
    return z, y, x


def normalise(array: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """Step 5 of the module docstring: model units from the image's own units (float32)."""
    if contract.normalisation == "window":
        return window_hu(array, contract.window_hu)
    if contract.normalisation == "zscore":
        low, high = contract.window_hu
        return (np.clip(array, low, high) - np.float32(contract.mean)) / np.float32(contract.std)
    if contract.normalisation == "image_zscore":
        return image_zscore(array, contract.percentiles)[0]
    low, high = contract.percentiles
    return percentile_normalise(array, low, high)


def contract_geometry(
    volume: Volume, contract: PreprocessContract
) -> tuple[Volume, np.ndarray, np.ndarray | None, tuple[float, float, float] | None]:
    """The geometric steps of `apply_contract`, shared with whoever maps results back.

    Returns:
        The volume in the contract's orientation (`canonical_volume`), its array resampled
        to ``contract.spacing_mm`` and denoised (not yet normalised), the lung mask of that
        array (when ``crop_to`` is ``"lungs"``), and the centre of the ``contract.shape``
        box (None when the contract keeps the whole image).
    """
    volume = canonical_volume(volume, contract)
    array = resample_to_spacing(volume.array, volume.spacing_mm, contract.spacing_mm)
    if contract.denoise != "none":
        array = denoise(array, contract.denoise, **contract.denoise_params)  # type: ignore[arg-type]
    lungs = lung_mask(array, BODY_THRESHOLD_HU) if contract.crop_to == "lungs" else None
    # only a fixed-size crop needs a centre
    center = crop_center(array, contract, lungs) if contract.shape is not None else None
    return volume, array, lungs, center


def apply_contract(volume: Volume, contract: PreprocessContract) -> np.ndarray:
    """Turn an image into the float32 array the model expects (``contract.shape`` if set)."""
    _, array, lungs, center = contract_geometry(volume, contract)
    has_lungs = lungs is not None and bool(lungs.any())
    background = background_value(contract)
    array = normalise(array, contract)
    if contract.mask_outside_lungs and has_lungs:
        array = np.where(lungs, array, np.float32(background)).astype(np.float32)  # type: ignore[arg-type]
    if contract.shape is None:
        return array.astype(np.float32, copy=False)
    if len(contract.shape) == 3:
        return crop_or_pad(array, contract.shape, center, fill=background)
    if array.shape[0] != 1:
        raise InputError(
            f"this model takes one-slice (2D) images; the input has {array.shape[0]} slices "
            f"at {contract.spacing_mm[0]} mm"
        )
    y, x = contract.shape
    return crop_or_pad(array, (1, y, x), center, fill=background)[0]
