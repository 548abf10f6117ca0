"""The dataset fingerprint: what a plan is derived from (nnU-Net's dataset_fingerprint.json).

Spacings and shapes come from every volume given. The modality is settled first, per image
(manifest column, DICOM header, else inferred from the intensities: see `modality`), because
what is measured depends on it: intensities are sampled inside the body (CT: voxels above
-500 HU and the air they enclose, i.e. the lungs; other modalities: the foreground of
`normalisation.foreground_mask`); for CT the extent of the lung fields is measured, for the
others the extent of the foreground and the noise level, so a crop and a denoiser can be
chosen from data rather than code. Units: mm, HU for CT; axis order ``(z, y, x)`` throughout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.denoising import estimate_noise_std
from medsight.imaging.preprocess.geometry import enclosed_air
from medsight.imaging.preprocess.lung_mask import lung_mask
from medsight.imaging.preprocess.modality import infer_modality
from medsight.imaging.preprocess.normalisation import foreground_mask
from medsight.imaging.preprocess.orientation import orientation_code, reorient

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
    #: axis codes the volumes were measured in (one-slice images: as stored); None: as read
    orientation: str | None = None
    modality: str
    #: where ``modality`` came from: manifest column, DICOM header, or how it was inferred
    modality_source: str = ""
    #: modality of every measured image (a mixed dataset shows here)
    modality_counts: dict[str, int] = {}
    class_counts: dict[str, int]
    spacing_mm: AxisStats
    shape_vox: AxisStats
    extent_mm: AxisStats
    lung_extent_mm: AxisStats | None
    #: extent of the foreground (not CT), what a crop to the foreground must hold
    foreground_extent_mm: AxisStats | None = None
    foreground_percentiles_hu: dict[str, float]
    foreground_mean: float
    foreground_std: float
    #: median over images (not CT) of the estimated noise standard deviation divided by
    #: the image's mean foreground intensity (1 / SNR)
    noise_ratio: float | None = None


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
    declared_modalities: Sequence[str] | None = None,
    orientation: str | None = None,
) -> DatasetFingerprint:
    """Measure ``volumes`` (any number; typically a seeded sample of the dataset).

    Args:
        volumes: the volumes to measure, as read (HU for CT).
        labels, patients: one entry per case of the whole dataset (class balance, patients).
        samples_per_case: foreground voxels drawn per volume for the intensity statistics.
        seed: seed of that draw.
        declared_modalities: the manifest's modality of each volume, in order ("" where
            none is given); see `modality.infer_modality`.
        orientation: measure volumes reoriented to these axis codes (what a plan that
            reorients will see); one-slice images are measured as stored. None: as read.

    Raises:
        ValueError: no volume was given.
    """
    rng = np.random.default_rng(seed)
    spacings, shapes, extents, lung_extents, samples = [], [], [], [], []
    foreground_extents, noise_ratios = [], []
    modalities: Counter[str] = Counter()
    sources: dict[str, str] = {}
    for i, volume in enumerate(volumes):
        if orientation and volume.shape[0] > 1 and orientation_code(volume) != orientation:
            volume = reorient(volume, orientation)
        declared = declared_modalities[i] if declared_modalities else ""
        modality, source = infer_modality(volume, declared)
        modalities[modality] += 1
        sources.setdefault(modality, source)
        spacings.append(volume.spacing_mm)
        shapes.append(tuple(float(n) for n in volume.shape))
        extents.append(tuple(n * s for n, s in zip(volume.shape, volume.spacing_mm, strict=True)))
        if modality == "CT":  # the body outline with what it encloses (lungs too)
            array = volume.array
            body = (array > BODY_HU) | enclosed_air(array, BODY_HU)
        else:
            array = volume.array if volume.channels == 1 else volume.array.mean(axis=-1)
            body = foreground_mask(array)
            foreground_extents.append(_bbox_extent_mm(body, volume.spacing_mm))
        values = array[body] if body.any() else array.ravel()
        samples.append(rng.choice(values, size=min(samples_per_case, values.size), replace=False))
        if modality == "CT":
            lungs = lung_mask(array, BODY_HU)
            if lungs.sum() > 0.01 * lungs.size:
                lung_extents.append(_bbox_extent_mm(lungs, volume.spacing_mm))
        else:
            signal = float(np.mean(values))
            if signal > 0:
                noise_ratios.append(estimate_noise_std(array) / signal)
    if not spacings:
        raise ValueError("fingerprint needs at least one volume")
    pooled = np.concatenate(samples).astype(np.float64)
    modality = modalities.most_common(1)[0][0]
    return DatasetFingerprint(
        n_cases=len(labels),
        n_measured=len(spacings),
        n_patients=len(set(patients)),
        orientation=orientation,
        modality=modality,
        modality_source=sources[modality],
        modality_counts=dict(sorted(modalities.items())),
        class_counts=dict(sorted(Counter(labels).items())),
        spacing_mm=_axis_stats(spacings),
        shape_vox=_axis_stats(shapes),  # type: ignore[arg-type]
        extent_mm=_axis_stats(extents),  # type: ignore[arg-type]
        lung_extent_mm=_axis_stats(lung_extents)
        if len(lung_extents) >= max(1, len(spacings) // 2)
        else None,
        foreground_extent_mm=_axis_stats(foreground_extents) if foreground_extents else None,
        foreground_percentiles_hu={
            f"p{p:g}": float(np.percentile(pooled, p)) for p in _PERCENTILES
        },
        foreground_mean=float(pooled.mean()),
        foreground_std=float(pooled.std()),
        noise_ratio=float(np.median(noise_ratios)) if noise_ratios else None,
    )
