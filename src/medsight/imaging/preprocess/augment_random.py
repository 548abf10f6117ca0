"""Random augmentations that draw parameters, apply a deterministic transform, and record it.

The TorchIO pattern (``RandomGamma`` -> ``Gamma``): each class is a frozen config of ranges.
``sample(rng, ndim)`` draws the parameters; `RandomTransform.draw` first draws
``rng.random() < p`` (apply or not; no draw when ``p`` is 1), then the parameters (always, so
the generator advances the same way whether or not the transform applies, and whatever the
array holds), and returns the record; calling the transform also runs the deterministic
transform of `augment_geometry` / `augment_intensity` through `augment_replay.apply_record`.
Because the draws depend only on the generator and the array's number of dimensions, an
image and its mask augmented from the same seed get the same geometry; replaying the image's
records on the mask (``label=True``) does the same without a second random pass.

``rng`` is a ``numpy.random.Generator`` or a `TorchDraws` (the same three methods drawing
from a ``torch.Generator``), so the training loop's one seeded torch generator drives
augmentation and its state is saved with every epoch.

Arrays are 2D ``[y, x]`` or 3D ``[z, y, x]``. Rotation, scaling and elastic displacement are
in voxels (see `augment_geometry`); noise std is in the array's units (augment after
normalisation).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from medsight.imaging.preprocess.augment_replay import AugmentRecord, apply_record


class TorchDraws:
    """``random``, ``uniform`` and ``integers`` of a numpy Generator, drawn from torch's.

    Each call consumes the torch generator exactly as the equivalent ``torch.rand`` /
    ``torch.randint`` call would (float32 for `random`, as ``torch.rand(())``).
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def random(self) -> float:
        """One uniform draw in [0, 1)."""
        return float(torch.rand((), generator=self.generator))

    def uniform(
        self, low: float = 0.0, high: float = 1.0, size: int | tuple[int, ...] | None = None
    ) -> Any:
        """Uniform draws in [low, high): a float, or a float64 array of ``size``."""
        shape = () if size is None else (size,) if isinstance(size, int) else tuple(size)
        u = torch.rand(shape, dtype=torch.float64, generator=self.generator).numpy()
        values = low + (high - low) * u
        return float(values) if size is None else values

    def integers(self, low: int, high: int, size: int | tuple[int, ...] | None = None) -> Any:
        """Integers in [low, high): an int, or an int64 array of ``size``."""
        shape = () if size is None else (size,) if isinstance(size, int) else tuple(size)
        values = torch.randint(int(low), int(high), shape, generator=self.generator).numpy()
        return int(values) if size is None else values


Draws = np.random.Generator | TorchDraws


def _check_range(name: str, bounds: tuple[float, float]) -> None:
    if len(bounds) != 2 or not bounds[0] <= bounds[1]:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {bounds}")


def _seed(rng: Draws) -> int:
    return int(rng.integers(0, 2**31 - 1))


@dataclass(frozen=True)
class RandomTransform(ABC):
    """A random augmentation: ``p`` is the probability that it is applied at all."""

    name: ClassVar[str]
    p: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")

    @abstractmethod
    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the deterministic transform's parameters (JSON-serialisable).

        Args:
            rng: the generator to draw from.
            ndim: 2 for ``[y, x]`` arrays, 3 for ``[z, y, x]``.

        Returns:
            Keyword arguments of the deterministic transform named ``name``.
        """

    def draw(self, rng: Draws, ndim: int) -> AugmentRecord | None:
        """Decide whether to apply (a ``p`` draw, none when ``p`` is 1), then draw parameters.

        Args:
            rng: the generator to draw from.
            ndim: 2 for ``[y, x]`` arrays, 3 for ``[z, y, x]``.

        Returns:
            The record to apply, or None when the ``p`` draw skipped the transform.
        """
        applied = self.p >= 1.0 or bool(rng.random() < self.p)
        params = self.sample(rng, ndim)
        return AugmentRecord(transform=self.name, params=params) if applied else None

    def __call__(
        self, array: np.ndarray, rng: Draws, label: bool = False
    ) -> tuple[np.ndarray, AugmentRecord | None]:
        """Maybe apply the transform with freshly drawn parameters (see `draw`).

        Args:
            array: ``[y, x]`` or ``[z, y, x]``.
            rng: the generator to draw from.
            label: the array is a label map (nearest neighbour, intensity skipped).

        Returns:
            The output array and its record, or the input array and None when the ``p``
            draw skipped the transform.
        """
        record = self.draw(rng, np.ndim(array))
        if record is None:
            return array, None
        return apply_record(array, record, label), record


@dataclass(frozen=True)
class RandomFlip(RandomTransform):
    """Mirror along a random non-empty subset of ``axes`` (each subset equally likely).

    The default, ``(-1,)``, is a left-right flip; only flip axes whose mirror image is
    anatomically plausible (or whose labels are symmetric).
    """

    name: ClassVar[str] = "flip"
    axes: tuple[int, ...] = (-1,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.axes:
            raise ValueError("RandomFlip needs at least one axis")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw which of ``axes`` to flip (see `RandomTransform.sample`); one axis: no draw."""
        if len(self.axes) == 1:
            return {"axes": [int(self.axes[0])]}
        subset = int(rng.integers(1, 2 ** len(self.axes)))
        return {"axes": [int(a) for i, a in enumerate(self.axes) if subset >> i & 1]}


@dataclass(frozen=True)
class RandomShift(RandomTransform):
    """Shift by whole voxels (circularly), ``-max_steps..max_steps`` steps per axis.

    A step is ``in_plane_step_vox`` voxels in-plane and ``slice_step_vox`` along z (3D), since
    the in-plane grid is usually finer than the slice spacing. The defaults are the shifts
    the classification loop has always used.
    """

    name: ClassVar[str] = "shift"
    max_steps: int = 3
    in_plane_step_vox: int = 2
    slice_step_vox: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_steps < 0 or self.in_plane_step_vox < 0 or self.slice_step_vox < 0:
            raise ValueError("max_steps and step sizes must be >= 0")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the steps of every axis (see `RandomTransform.sample`)."""
        steps = rng.integers(-self.max_steps, self.max_steps + 1, size=ndim)
        sizes = [
            self.slice_step_vox if ndim == 3 and axis == 0 else self.in_plane_step_vox
            for axis in range(ndim)
        ]
        return {"steps_vox": [int(n) * k for n, k in zip(steps, sizes, strict=True)]}


@dataclass(frozen=True)
class RandomRotate(RandomTransform):
    """Rotate about the centre by angles drawn uniformly from ``range_deg``.

    In 3D only the in-plane (axial, about z) angle is drawn when ``in_plane_only`` (the
    safe choice for thick slices); otherwise all three angles are.
    """

    name: ClassVar[str] = "rotate"
    range_deg: tuple[float, float] = (-10.0, 10.0)
    in_plane_only: bool = True
    order: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("range_deg", self.range_deg)

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the rotation angles (see `RandomTransform.sample`)."""
        low, high = self.range_deg
        if ndim == 2:
            angles = [float(rng.uniform(low, high))]
        else:
            drawn = [float(a) for a in rng.uniform(low, high, size=3)]
            angles = [drawn[0], 0.0, 0.0] if self.in_plane_only else drawn
        return {"angles_deg": angles, "order": self.order}


@dataclass(frozen=True)
class RandomScale(RandomTransform):
    """Magnify or shrink about the centre by factors drawn uniformly from ``factor_range``."""

    name: ClassVar[str] = "scale"
    factor_range: tuple[float, float] = (0.9, 1.1)
    isotropic: bool = True
    order: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("factor_range", self.factor_range)
        if not self.factor_range[0] > 0:
            raise ValueError(f"factor_range must be positive, got {self.factor_range}")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the scale factor(s) (see `RandomTransform.sample`)."""
        drawn = [float(f) for f in rng.uniform(*self.factor_range, size=ndim)]
        factors = [drawn[0]] * ndim if self.isotropic else drawn
        return {"factor": factors, "order": self.order}


@dataclass(frozen=True)
class RandomElastic(RandomTransform):
    """Smooth random deformation (see `augment_geometry.elastic_displacement`).

    Only the field's seed is drawn; ``control_points`` and ``max_displacement_vox`` are
    fixed, as in TorchIO's ``RandomElasticDeformation``.
    """

    name: ClassVar[str] = "elastic"
    control_points: int = 7
    max_displacement_vox: float = 3.0
    order: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.control_points < 4 or self.max_displacement_vox < 0:
            raise ValueError("need control_points >= 4 and max_displacement_vox >= 0")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the displacement field's seed (see `RandomTransform.sample`)."""
        return {
            "control_points": self.control_points,
            "max_displacement_vox": float(self.max_displacement_vox),
            "seed": _seed(rng),
            "order": self.order,
        }


@dataclass(frozen=True)
class RandomNoise(RandomTransform):
    """Add Gaussian noise with a standard deviation drawn uniformly from ``std_range``."""

    name: ClassVar[str] = "noise"
    std_range: tuple[float, float] = (0.0, 0.1)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("std_range", self.std_range)
        if self.std_range[0] < 0:
            raise ValueError(f"std_range must be >= 0, got {self.std_range}")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the noise level and the noise's seed (see `RandomTransform.sample`)."""
        return {"std": float(rng.uniform(*self.std_range)), "seed": _seed(rng)}


@dataclass(frozen=True)
class RandomGamma(RandomTransform):
    """Gamma contrast change with ``log(gamma)`` drawn uniformly from ``log_gamma_range``.

    Log-uniform, as TorchIO does, so brightening and darkening are equally likely.
    """

    name: ClassVar[str] = "gamma"
    log_gamma_range: tuple[float, float] = (-0.3, 0.3)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("log_gamma_range", self.log_gamma_range)

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw gamma (see `RandomTransform.sample`)."""
        return {"gamma": math.exp(float(rng.uniform(*self.log_gamma_range)))}


@dataclass(frozen=True)
class RandomBiasField(RandomTransform):
    """Smooth multiplicative bias field (MR inhomogeneity), as TorchIO's ``RandomBiasField``.

    Legendre coefficients of total degree up to ``degree`` are drawn uniformly from
    ``[-max_coefficient, max_coefficient]``; higher-degree entries are 0.
    """

    name: ClassVar[str] = "bias_field"
    max_coefficient: float = 0.5
    degree: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_coefficient < 0 or self.degree < 0:
            raise ValueError("need max_coefficient >= 0 and degree >= 0")

    def sample(self, rng: Draws, ndim: int) -> dict[str, Any]:
        """Draw the Legendre coefficients (see `RandomTransform.sample`)."""
        size = (self.degree + 1,) * ndim
        drawn = rng.uniform(-self.max_coefficient, self.max_coefficient, size=size)
        total_degree = np.indices(size).sum(axis=0)
        coefficients = np.where(total_degree <= self.degree, drawn, 0.0)
        return {"coefficients": coefficients.tolist()}


#: every random transform by the name of the deterministic transform it records
RANDOM_TRANSFORMS: dict[str, type[RandomTransform]] = {
    cls.name: cls
    for cls in (
        RandomFlip,
        RandomShift,
        RandomRotate,
        RandomScale,
        RandomElastic,
        RandomNoise,
        RandomGamma,
        RandomBiasField,
    )
}
