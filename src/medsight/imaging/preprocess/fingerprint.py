"""The dataset fingerprint: what a plan is derived from (nnU-Net's dataset_fingerprint.json).

Spacings and shapes come from every volume given; intensities are sampled inside the body
(CT: voxels above -500 HU and the air they enclose, i.e. the lungs) and, for CT, the extent
of the lung fields is measured so a classification crop can be sized from data rather than
code. Units: mm, HU; axis order ``(z, y, x)`` throughout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.geometry import enclosed_air
from medsight.imaging.preprocess.lung_mask import lung_mask

BODY_HU = -500.0
_PERCENTILES = (0.5, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.5)


class AxisStats(BaseModel):
    """Median and spread of one per-case quantity, per axis ``(z, y, x)``."""

    model_config = ConfigDict(frozen=True)

    median: tuple[float, float, float]
    p10: tuple[float, float, float]
    p90: tuple[float, float, float]
    max: tuple[float, float, float]


class DatasetFingerprint(BaseModel):
    """Summary statistics of a dataset, saved as JSON inside ``plan.json``."""

    model_config = ConfigDict(frozen=True)

    n_cases: int
    n_measured: int
    n_patients: int
    modality: str
    class_counts: dict[str, int]
    spacing_mm: AxisStats
    shape_vox: AxisStats
    extent_mm: AxisStats
    lung_extent_mm: AxisStats | None
    foreground_percentiles_hu: dict[str, float]
    foreground_mean: float
    foreground_std: float


def _axis_stats(rows: list[tuple[float, float, float]]) -> AxisStats:
    a = np.asarray(rows, dtype=float)

    def triple(v: np.ndarray) -> tuple[float, float, float]:
        return float(v[0]), float(v[1]), float(v[2])

    return AxisStats(
        median=triple(np.median(a, axis=0)),
        p10=triple(np.percentile(a, 10, axis=0)),
        p90=triple(np.percentile(a, 90, axis=0)),
        max=triple(a.max(axis=0)),
    )


def _bbox_extent_mm(
    mask: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[float, float, float]:
    extent = []
    for axis in range(3):
        idx = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        extent.append(float((idx[-1] - idx[0] + 1) * spacing_mm[axis]) if idx.size else 0.0)
    return extent[0], extent[1], extent[2]


def fingerprint_dataset(
    volumes: Iterable[Volume],
    labels: list[str],
    patients: list[str],
    samples_per_case: int = 10_000,
    seed: int = 0,
) -> DatasetFingerprint:
    """Measure ``volumes`` (any number; typically a seeded sample of the dataset).

    Args:
        volumes: the volumes to measure, in HU for CT.
        labels, patients: one entry per case of the whole dataset (class balance, patients).
        samples_per_case: foreground voxels drawn per volume for the intensity statistics.
        seed: seed of that draw.

    Raises:
        ValueError: no volume was given.
    """
    rng = np.random.default_rng(seed)
    spacings, shapes, extents, lung_extents, samples = [], [], [], [], []
    modalities: Counter[str] = Counter()
    for volume in volumes:
        modalities[volume.modality] += 1
        spacings.append(volume.spacing_mm)
        shapes.append(tuple(float(n) for n in volume.shape))
        extents.append(tuple(n * s for n, s in zip(volume.shape, volume.spacing_mm, strict=True)))
        if volume.modality == "CT":  # the body outline with what it encloses (lungs too)
            body = (volume.array > BODY_HU) | enclosed_air(volume.array, BODY_HU)
        else:
            body = volume.array > 0
        values = volume.array[body] if body.any() else volume.array.ravel()
        samples.append(rng.choice(values, size=min(samples_per_case, values.size), replace=False))
        if volume.modality == "CT":
            lungs = lung_mask(volume.array, BODY_HU)
            if lungs.sum() > 0.01 * lungs.size:
                lung_extents.append(_bbox_extent_mm(lungs, volume.spacing_mm))
    if not spacings:
        raise ValueError("fingerprint needs at least one volume")
    pooled = np.concatenate(samples).astype(np.float64)
    return DatasetFingerprint(
        n_cases=len(labels),
        n_measured=len(spacings),
        n_patients=len(set(patients)),
        modality=modalities.most_common(1)[0][0],
        class_counts=dict(sorted(Counter(labels).items())),
        spacing_mm=_axis_stats(spacings),
        shape_vox=_axis_stats(shapes),  # type: ignore[arg-type]
        extent_mm=_axis_stats(extents),  # type: ignore[arg-type]
        lung_extent_mm=_axis_stats(lung_extents)
        if len(lung_extents) >= max(1, len(spacings) // 2)
        else None,
        foreground_percentiles_hu={
            f"p{p:g}": float(np.percentile(pooled, p)) for p in _PERCENTILES
        },
        foreground_mean=float(pooled.mean()),
        foreground_std=float(pooled.std()),
    )
