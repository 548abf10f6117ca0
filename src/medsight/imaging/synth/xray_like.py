"""A small, seeded set of 16-bit PNG "chest X-rays": normal, or with a bright nodule.

What it is for: checking that a two-class X-ray-like dataset is learnable out of the box
(`medsight train` plans it as 2D, normalises each image by its own percentiles, and uses no
lung-specific step). It is not a radiograph simulator. Each image is a frontal chest
projection drawn as attenuation in [0, 1]: air outside the body, soft tissue, two darker
lung fields with vessel-like texture, rib shadows, a bright mediastinum and spine, and a
diaphragm dome; ``nodule`` images add a Gaussian blob (sigma 3-5% of the image width) inside
a lung field.
Every image then gets its own detector response (gain over a 4x range, offset) and noise,
and is written as a 16-bit grey-scale PNG, so intensities are not comparable between images,
as with real DX/CR exports.

The classes are separable by a one-line feature (the largest difference-of-Gaussians
response inside the lungs has a ROC-AUC near 1.0), but not by global intensity.

Array convention: ``[y, x]`` = ``[row, column]``, row 0 at the top (head end).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from medsight.runs.atomic import atomic_dir

XRAY_CLASSES = ("normal", "nodule")
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class XrayCase:
    """One image: its label and the pixels as written (uint16)."""

    case_id: str
    label: str
    pixels: np.ndarray
    #: centre (row, column) of the nodule, None for normal images
    nodule_rc: tuple[float, float] | None
    #: where the lung fields are (for checking a feature inside them)
    lungs: np.ndarray


def _lung_fields(rows: np.ndarray, cols: np.ndarray, size: int, rng: np.random.Generator):
    """Boolean masks of the two lung fields (image-left, image-right) and the body."""
    scale = float(rng.uniform(0.92, 1.08))
    shift_r, shift_c = (float(v) for v in rng.uniform(-0.03, 0.03, size=2) * size)
    cr, cc = 0.48 * size + shift_r, 0.5 * size + shift_c
    body = ((rows - cr) / (0.55 * size)) ** 2 + ((cols - cc) / (0.43 * size * scale)) ** 2 <= 1
    lungs = []
    for side in (-1.0, 1.0):
        lc = cc + side * 0.19 * size * scale
        radii = (0.27 * size * scale, 0.13 * size * scale)
        field = ((rows - (cr - 0.02 * size)) / radii[0]) ** 2 + ((cols - lc) / radii[1]) ** 2 <= 1
        # the diaphragm dome cuts each lung from below
        dome = rows > cr + 0.18 * size - 0.5 * ((cols - lc) / radii[1]) ** 2 * 0.08 * size
        lungs.append(field & ~dome)
    return lungs[0], lungs[1], body, (cr, cc)


def render_xray(
    size: int, nodule: bool, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[float, float] | None, np.ndarray]:
    """Attenuation image in about [0, 1.2] (float32), the nodule's centre, the lung mask.

    Args:
        size: image edge in pixels.
        nodule: draw a nodule in one lung field.
        rng: the generator every random choice is drawn from.
    """
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    left, right, body, (_, cc) = _lung_fields(rows, cols, size, rng)
    image = np.full((size, size), 0.04)
    image[body] = 0.62
    lungs = left | right
    px = size / 64  # lengths below are in pixels of a 64-pixel image
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.5 * px) * 0.06
    image[lungs] = 0.26 + texture[lungs]
    # ribs: curved bands across the chest, faint over the lungs
    period = float(rng.uniform(0.085, 0.1)) * size
    phase = float(rng.uniform(0, 2 * np.pi))
    ribs = np.sin(2 * np.pi * (rows + 0.5 * (cols - cc) ** 2 / size) / period + phase) > 0.55
    image[ribs & body] += 0.04
    # mediastinum and spine between the lungs
    mediastinum = body & (np.abs(cols - cc) < 0.07 * size) & (rows > 0.2 * size)
    image[mediastinum] += 0.25
    centre: tuple[float, float] | None = None
    if nodule:
        inner = ndimage.binary_erosion(lungs, iterations=max(1, round(3 * px)))
        candidates = np.argwhere(inner)
        r, c = candidates[int(rng.integers(len(candidates)))]
        sigma = float(rng.uniform(0.035, 0.055)) * size
        amplitude = float(rng.uniform(0.25, 0.35))
        image += amplitude * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma**2))
        centre = (float(r), float(c))
    # detector blur
    return ndimage.gaussian_filter(image, 0.6 * px).astype(np.float32), centre, lungs


def make_xray_case(index: int, label: str, size: int, seed: int) -> XrayCase:
    """Render one case (its own generator: any case can be redrawn alone)."""
    rng = np.random.default_rng([seed, index])
    attenuation, centre, lungs = render_xray(size, label == "nodule", rng)
    gain = float(np.exp(rng.uniform(np.log(9_000.0), np.log(36_000.0))))
    offset = float(rng.uniform(300.0, 3_000.0))
    signal = offset + gain * attenuation
    noisy = signal + rng.standard_normal(signal.shape) * 0.012 * gain
    pixels = np.clip(np.rint(noisy), 0, 65_535).astype(np.uint16)
    return XrayCase(f"xr_{index:04d}", label, pixels, centre, lungs)


def write_xray_dataset(out: Path, n_cases: int = 320, seed: int = 0, size: int = 64) -> Path:
    """Write ``n_cases`` PNGs (half ``normal``, half ``nodule``) and their manifest.

    Args:
        out: destination folder (replaced only once complete); holds ``manifest.csv``
            (``path,label,patient_id``, one patient per image) and ``images/``.
        n_cases: number of images (at least 2); the default 320 (64 x 64 pixels) trains to a
            test AUC of 1.0 in about 20 s on two CPU cores (tests/imaging/test_learnability.py).
        seed: the same seed gives byte-identical files.
        size: image edge in pixels.

    Returns:
        The path of ``manifest.csv``.

    Raises:
        ValueError: fewer than 2 cases or an image under 32 pixels.
    """
    if n_cases < 2 or size < 32:
        raise ValueError(f"need n_cases >= 2 and size >= 32, got {n_cases}, {size}")
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        rows = []
        for i in range(n_cases):
            case = make_xray_case(i, XRAY_CLASSES[i % 2], size, seed)
            name = f"images/{case.case_id}.png"
            Image.fromarray(case.pixels).save(tmp / name, optimize=False)
            rows.append({"path": name, "label": case.label, "patient_id": f"XP{i:04d}"})
        with open(tmp / MANIFEST, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "label", "patient_id"])
            writer.writeheader()
            writer.writerows(rows)
    return out / MANIFEST
