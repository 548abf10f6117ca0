"""Training-time augmentation: the plan's `AugmentSpec`, applied to a batch and recorded.

The plan (``plan.json``, key ``augment``) names the random transforms, in order, with their
probabilities and ranges; `augment_batch` draws every sample's parameters from the training
loop's seeded ``torch.Generator`` (so a seed, or a resumed generator state, fixes every
batch), applies the deterministic transforms, and returns one list of records per sample.
`replay_batch` reproduces the output from those records alone, on the image or, with
``label=True``, on its label map (same geometry, nearest neighbour, no intensity change)::

    x_aug, records = augment_batch(x, generator, plan.augment)
    y_aug = replay_batch(y, records, label=True)

Presets (`augment_preset`): ``"flip+shift"`` is exactly what classification training did
before augmentation was planned (a left-right flip with probability 1/2, then a circular
shift of -3..3 steps per axis, in-plane steps of 2 voxels), drawn from the generator in the
same order, so runs that use it give the same batches as before. ``"mr"`` adds small
in-plane rotations and scaling, and no intensity change (after a per-scan z-score, gamma,
noise and bias fields change what the units mean): on the synthetic MR set (120 training
scans, a focus of 2-3 voxels radius) a stronger preset with gamma and noise stayed at chance
for 17 epochs, this one learned in 6. ``"xray"`` adds rotations, scaling, gamma (an
exposure curve) and faint noise, and no mirror (a chest's left and right differ). ``"none"``
switches augmentation off.

Batches are ``(N, C, *spatial)`` tensors, 2D or 3D; every channel of a sample gets the same
transform.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsight.imaging.preprocess.augment_random import (
    RANDOM_TRANSFORMS,
    RandomTransform,
    TorchDraws,
)
from medsight.imaging.preprocess.augment_replay import AugmentRecord, replay

TransformName = Literal[
    "flip", "shift", "rotate", "scale", "elastic", "noise", "gamma", "bias_field"
]


class AugmentStep(BaseModel):
    """One random transform of the spec: its name, probability and ranges."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transform: TransformName
    p: float = Field(1.0, ge=0.0, le=1.0)
    #: the random transform's settings, e.g. {"range_deg": [-10, 10]} for rotate
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _buildable(self) -> AugmentStep:
        self.random_transform()  # unknown options or bad ranges fail when the plan is read
        return self

    def random_transform(self) -> RandomTransform:
        """The `augment_random` transform this step describes.

        Raises:
            ValueError: an option the transform does not have, or an invalid range.
        """
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in self.options.items()}
        try:
            return RANDOM_TRANSFORMS[self.transform](p=self.p, **options)
        except TypeError as exc:
            raise ValueError(f"{self.transform}: {exc}") from None


class AugmentSpec(BaseModel):
    """The augmentation a plan trains with (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    steps: tuple[AugmentStep, ...] = ()


def _step(transform: TransformName, p: float = 1.0, **options: Any) -> AugmentStep:
    return AugmentStep(transform=transform, p=p, options=options)


AUGMENT_PRESETS: dict[str, tuple[AugmentStep, ...]] = {
    "none": (),
    "flip+shift": (_step("flip", 0.5, axes=[-1]), _step("shift", max_steps=3)),
    "mr": (
        _step("flip", 0.5, axes=[-1]),
        _step("shift", max_steps=3),
        _step("rotate", 0.3, range_deg=[-8.0, 8.0], in_plane_only=True),
        _step("scale", 0.3, factor_range=[0.93, 1.07]),
    ),
    "xray": (
        _step("shift", max_steps=3),
        _step("rotate", 0.3, range_deg=[-7.0, 7.0]),
        _step("scale", 0.3, factor_range=[0.93, 1.07]),
        _step("gamma", 0.3, log_gamma_range=[-0.2, 0.2]),
        _step("noise", 0.2, std_range=[0.0, 0.02]),
    ),
}


def augment_preset(name: str) -> AugmentSpec:
    """The preset ``name`` (one of `AUGMENT_PRESETS`).

    Raises:
        KeyError: no preset has that name.
    """
    return AugmentSpec(name=name, steps=AUGMENT_PRESETS[name])


def _apply(sample: np.ndarray, records: list[AugmentRecord], label: bool) -> np.ndarray:
    """``records`` on every channel of one ``(C, *spatial)`` sample."""
    return np.stack([replay(channel, records, label) for channel in sample])


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, spec: AugmentSpec
) -> tuple[torch.Tensor, list[list[AugmentRecord]]]:
    """Augment a batch with parameters drawn from ``generator``.

    Args:
        x: ``(N, C, *spatial)`` images (2 or 3 spatial axes), float32.
        generator: the loop's seeded generator; it advances by the draws made.
        spec: the plan's augmentation.

    Returns:
        The augmented batch (float32, on ``x``'s device) and, per sample, the records of the
        transforms applied to it, in order (JSON-serialisable; see `replay_batch`).
    """
    transforms = [step.random_transform() for step in spec.steps]
    if not transforms:
        return x, [[] for _ in range(len(x))]
    draws = TorchDraws(generator)
    spatial = x.ndim - 2
    arrays = x.detach().to("cpu", torch.float32).numpy()
    out, records = [], []
    for sample in arrays:
        drawn = [t.draw(draws, spatial) for t in transforms]
        applied = [r for r in drawn if r is not None]
        out.append(_apply(sample, applied, label=False))
        records.append(applied)
    return torch.from_numpy(np.stack(out)).to(x.device), records


def replay_batch(
    x: torch.Tensor, records: list[list[AugmentRecord]], label: bool = False
) -> torch.Tensor:
    """Apply each sample's recorded augmentation again (see `augment_batch`).

    Args:
        x: the ``(N, C, *spatial)`` batch the records were drawn for, or its label maps
            with ``label=True``.
        records: one list of records per sample.
        label: replay on label maps: nearest neighbour, dtype kept, intensity skipped.

    Returns:
        The augmented batch: float32 for images, ``x``'s dtype for labels.

    Raises:
        ValueError: not one list of records per sample.
        InputError: a record is malformed or names no known transform.
    """
    if len(records) != len(x):
        raise ValueError(f"{len(records)} record lists for a batch of {len(x)}")
    arrays = x.detach().cpu().numpy() if label else x.detach().to("cpu", torch.float32).numpy()
    out = [_apply(sample, list(recs), label) for sample, recs in zip(arrays, records, strict=True)]
    return torch.from_numpy(np.stack(out)).to(x.device)
