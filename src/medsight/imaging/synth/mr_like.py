"""A small, seeded set of NIfTI "brain MR" volumes: normal, or with a bright focus.

What it is for: checking that an MR-like dataset whose intensity scale differs from scan to
scan is learnable out of the box (`medsight train` infers MR from the intensities, z-scores
each scan on its own foreground, and uses no lung-specific step). It is not an MR
simulator. Each volume is a T1-like head: scalp (bright, its brightness varies between
scans), skull (dark), CSF, grey and white matter with a smooth texture, and two ventricles;
``focus`` volumes add a bright sphere (radius 10-14 mm, 1.3-1.6x white matter) in the
white matter. Every scan
then gets its own intensity scale (a 25x range), a smooth bias field and Rician noise, and
is stored as int16 NIfTI-1 (``.nii.gz``) with a RAS affine (5 mm voxels, 26 x 38 x 32),
as many research exports are.

The classes are separated only partly by a one-line feature (the maximum intensity after
per-scan scaling has a ROC-AUC of about 0.93: the brightest scalps rival the faintest foci),
and not at all by raw intensities.

Array convention: ``[z, y, x]``; the affine maps voxel ``(x, y, z)`` to RAS+ millimetres.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medsight.imaging.io.nifti import write_nifti
from medsight.runs.atomic import atomic_dir

MR_CLASSES = ("normal", "focus")
MANIFEST = "manifest.csv"
SHAPE_ZYX = (26, 38, 32)
SPACING_MM = 5.0
FOCUS_RADIUS_MM = (10.0, 14.0)
FOCUS_CONTRAST = (1.3, 1.6)


@dataclass(frozen=True)
class MRCase:
    """One scan: its label, the stored values (int16) and the brain mask."""

    case_id: str
    label: str
    array: np.ndarray
    brain: np.ndarray
    #: centre (z, y, x) voxel of the focus, None for normal scans
    focus_zyx: tuple[float, float, float] | None


def render_head(
    nodule: bool,
    rng: np.random.Generator,
    shape: tuple[int, int, int] = SHAPE_ZYX,
    focus_radius_mm: tuple[float, float] = FOCUS_RADIUS_MM,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float] | None]:
    """T1-like tissue intensities (white matter about 0.75), the brain mask, the focus centre.

    Args:
        nodule: draw a bright focus in the white matter.
        rng: the generator every random choice is drawn from.
        shape: ``(z, y, x)`` voxels at `SPACING_MM`.
        focus_radius_mm: range the focus radius is drawn from.
    """
    z, y, x = (np.mgrid[0 : shape[0], 0 : shape[1], 0 : shape[2]] + 0.5) * SPACING_MM
    centre = np.asarray(shape) * SPACING_MM / 2 + rng.uniform(-4, 4, size=3)
    radii = np.array([54.0, 80.0, 64.0]) * rng.uniform(0.93, 1.05, size=3)
    # distance inside the head surface in mm (approximately: radial scaling of an ellipsoid)
    rho = np.sqrt(
        ((z - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((x - centre[2]) / radii[2]) ** 2
    )
    depth_mm = (1.0 - rho) * float(radii.mean())
    image = np.zeros(shape)
    scalp = float(rng.uniform(0.75, 1.05))
    image[depth_mm > 0] = scalp
    image[depth_mm > 5] = 0.08  # skull
    image[depth_mm > 10] = 0.3  # CSF
    brain = depth_mm > 13
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5) * 0.12
    image[brain] = 0.5 + texture[brain]  # grey matter
    white = depth_mm > 20
    image[white] = 0.75 + texture[white]
    for side in (-1.0, 1.0):
        ventricle = (
            ((z - centre[0]) / 14) ** 2
            + ((y - centre[1] + 4) / 22) ** 2
            + ((x - centre[2] - side * 9) / 5) ** 2
        ) <= 1
        image[ventricle] = 0.28
    focus: tuple[float, float, float] | None = None
    if nodule:
        inner = ndimage.binary_erosion(white, iterations=2) & (image > 0.5)
        candidates = np.argwhere(inner)
        fz, fy, fx = candidates[int(rng.integers(len(candidates)))]
        radius_mm = float(rng.uniform(*focus_radius_mm))
        contrast = float(rng.uniform(*FOCUS_CONTRAST))
        dist = np.sqrt(
            (z - (fz + 0.5) * SPACING_MM) ** 2
            + (y - (fy + 0.5) * SPACING_MM) ** 2
            + (x - (fx + 0.5) * SPACING_MM) ** 2
        )
        weight = np.clip((radius_mm - dist) / SPACING_MM + 0.5, 0.0, 1.0)
        image = image * (1 - weight) + 0.75 * contrast * weight
        focus = (float(fz), float(fy), float(fx))
    return image.astype(np.float32), brain, focus


def make_mr_case(index: int, label: str, seed: int) -> MRCase:
    """Render one scan (its own generator: any case can be redrawn alone)."""
    rng = np.random.default_rng([seed, index])
    tissue, brain, focus = render_head(label == "focus", rng)
    scale = float(np.exp(rng.uniform(np.log(200.0), np.log(5_000.0))))
    axes = [np.linspace(-1, 1, n) for n in tissue.shape]
    gz, gy, gx = rng.uniform(-0.1, 0.1, size=3)
    bias = np.exp(gz * axes[0][:, None, None] + gy * axes[1][None, :, None] + gx * axes[2])
    signal = tissue * bias * scale
    sigma = 0.03 * scale
    # magnitude of a complex signal with Gaussian noise in both channels: Rician
    real = signal + rng.standard_normal(signal.shape) * sigma
    imaginary = rng.standard_normal(signal.shape) * sigma
    values = np.sqrt(real**2 + imaginary**2)
    array = np.clip(np.rint(values), 0, 32_767).astype(np.int16)
    return MRCase(f"mr_{index:04d}", label, array, brain, focus)


def mr_affine_ras(shape: tuple[int, int, int] = SHAPE_ZYX) -> np.ndarray:
    """RAS affine of the scans: `SPACING_MM` voxels, the field of view centred on the origin."""
    affine = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    affine[:3, 3] = -np.asarray(shape[::-1], dtype=float) * SPACING_MM / 2
    return affine


def write_mr_dataset(out: Path, n_cases: int = 200, seed: int = 0) -> Path:
    """Write ``n_cases`` NIfTI scans (half ``normal``, half ``focus``) and their manifest.

    Args:
        out: destination folder (replaced only once complete); holds ``manifest.csv``
            (``path,label,patient_id``, one patient per scan) and ``images/``.
        n_cases: number of scans (at least 2); the default 200 trains to a test AUC of 1.0 in
            about a minute on two CPU cores (tests/imaging/test_learnability.py).
        seed: the same seed gives byte-identical files.

    Returns:
        The path of ``manifest.csv``.

    Raises:
        ValueError: fewer than 2 cases.
    """
    if n_cases < 2:
        raise ValueError(f"need n_cases >= 2, got {n_cases}")
    affine = mr_affine_ras()
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        rows = []
        for i in range(n_cases):
            case = make_mr_case(i, MR_CLASSES[i % 2], seed)
            name = f"images/{case.case_id}.nii.gz"
            write_nifti(tmp / name, case.array, affine)
            rows.append({"path": name, "label": case.label, "patient_id": f"MP{i:04d}"})
        with open(tmp / MANIFEST, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "label", "patient_id"])
            writer.writeheader()
            writer.writerows(rows)
    return out / MANIFEST
