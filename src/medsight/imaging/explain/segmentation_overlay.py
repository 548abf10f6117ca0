"""Segmentations drawn over their CT slice, as PIL images and PNG files.

Array conventions: a volume or label map is indexed ``[z, y, x]`` (axial slice, row,
column; row 0 at the top of the image), a slice ``[y, x]``. CT intensities are in HU and are
shown through a window ``(low, high)`` in HU, black to white. A structure is named by its
index ``k = 1..`` in ``class_names`` (index 0 is background) and coloured
``STRUCTURE_COLOURS[k]``.

The images are built with numpy and PIL only: nearest-neighbour resampling keeps every
output pixel either plain grey (``R == G == B``) or tied to a mask, so a reader can tell the
CT from the drawing, and no matplotlib figure is needed per slice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from medsight.imaging.io.volume import Volume
from medsight.runs.atomic import atomic_path

RGB = tuple[int, int, int]
Layer = tuple[np.ndarray, RGB, str]

# Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour
# vision deficiencies; black is left out because it vanishes on CT.
STRUCTURE_COLOURS: Mapping[int, RGB] = MappingProxyType(
    {
        1: (86, 180, 233),  # sky blue
        2: (230, 159, 0),  # orange
        3: (0, 158, 115),  # bluish green
        4: (204, 121, 167),  # reddish purple
        5: (240, 228, 66),  # yellow
        6: (0, 114, 178),  # blue
        7: (213, 94, 0),  # vermillion
    }
)
# Reference vs prediction: blue against orange stays apart for every common deficiency.
TRUTH_COLOUR: RGB = (86, 180, 233)
PRED_COLOUR: RGB = (230, 159, 0)
FILL_ALPHA = 0.4
DEFAULT_WINDOW_HU = (-1000.0, 400.0)
LEGEND_ROW_PX = 14
STYLES = ("fill", "outline")


def structure_colour(index: int) -> RGB:
    """The colour of structure ``index`` (1..); the palette repeats past its end.

    Raises:
        ValueError: If ``index`` is below 1 (background has no colour).
    """
    if index < 1:
        raise ValueError(f"structure indices start at 1 (0 is background), got {index}")
    return STRUCTURE_COLOURS[(index - 1) % len(STRUCTURE_COLOURS) + 1]


def _windowed_grey(image_hu: np.ndarray, window_hu: tuple[float, float]) -> np.ndarray:
    low, high = (float(v) for v in window_hu)
    if not high > low:
        raise ValueError(f"window_hu must be (low, high) with high > low, got {window_hu}")
    unit = (np.nan_to_num(image_hu.astype(np.float32), nan=low) - low) / (high - low)
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels, sampling pixel centres."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    # border_value=0: a structure cut by the image edge is still closed by the edge.
    return mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0)


def overlay_slice(
    image_hu: np.ndarray,
    layers: Sequence[Layer],
    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
    aspect: float = 1.0,
    scale: int = 2,
) -> Image.Image:
    """A windowed CT slice with masks drawn over it, as an RGB image.

    All fills are drawn first (in ``layers`` order, later over earlier), then all outlines,
    so an outline stays crisp on top of another structure's fill.

    Args:
        image_hu: CT slice ``[y, x]`` in HU.
        layers: ``(mask, rgb, style)`` per structure: ``mask`` boolean ``[y, x]`` of the
            slice's shape, ``rgb`` its colour, ``style`` ``"fill"`` (translucent fill,
            ``FILL_ALPHA``, plus an outline) or ``"outline"`` (outline only, the interior
            stays grey).
        window_hu: ``(low, high)`` HU shown black to white.
        aspect: Row spacing / column spacing (mm); rows are resampled so that anatomy has
            its true proportions.
        scale: Integer upsampling factor (nearest neighbour) for visibility.

    Returns:
        An RGB image ``round(y * aspect * scale)`` pixels high and ``x * scale`` wide.

    Raises:
        ValueError: If the slice is not 2-D, a mask's shape differs from it, a style is
            unknown, or the window, aspect or scale is invalid.
    """
    image = np.asarray(image_hu)
    if image.ndim != 2 or min(image.shape) == 0:
        raise ValueError(f"image_hu must be a non-empty 2-D slice [y, x], got {image.shape}")
    if not (np.isfinite(aspect) and aspect > 0):
        raise ValueError(f"aspect must be a positive number, got {aspect}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    ny, nx = image.shape
    height = max(1, round(ny * aspect * scale))
    width = nx * int(scale)
    rows, cols = _nearest_index(ny, height), _nearest_index(nx, width)

    grey = _windowed_grey(image, window_hu)[np.ix_(rows, cols)]
    canvas = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    outline_width = max(1, int(scale) // 2)
    outlines: list[tuple[np.ndarray, np.ndarray]] = []
    for mask, rgb, style in layers:
        m = np.asarray(mask)
        if m.shape != image.shape:
            raise ValueError(f"mask shape {m.shape} differs from the slice's {image.shape}")
        if style not in STYLES:
            raise ValueError(f"layer style must be one of {STYLES}, got {style!r}")
        big = m.astype(bool)[np.ix_(rows, cols)]
        colour = np.asarray(rgb, dtype=np.float32)
        if style == "fill":
            canvas[big] = (1.0 - FILL_ALPHA) * canvas[big] + FILL_ALPHA * colour
        outlines.append((_outline(big, outline_width), colour))
    for edge, colour in outlines:
        canvas[edge] = colour
    return Image.fromarray(np.round(canvas).astype(np.uint8), mode="RGB")


def slice_of_interest(mask: np.ndarray) -> int:
    """The axial slice holding the most voxels of ``mask``; the middle slice if it is empty.

    Ties go to the lowest slice index.

    Raises:
        ValueError: If ``mask`` is not 3-D ``[z, y, x]`` or has no slices.
    """
    m = np.asarray(mask)
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"mask must be a 3-D [z, y, x] array with slices, got {m.shape}")
    counts = m.astype(bool).reshape(m.shape[0], -1).sum(axis=1)
    return int(np.argmax(counts)) if counts.max() > 0 else m.shape[0] // 2


def _file_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "structure"


def _checked_grid(volume: Volume, *maps: np.ndarray) -> None:
    if volume.channels != 1 or volume.array.ndim != 3:
        raise ValueError(f"expected a grey-scale [z, y, x] volume, got {volume.array.shape}")
    for label_map in maps:
        if np.shape(label_map) != volume.shape:
            raise ValueError(
                f"label map shape {np.shape(label_map)} differs from the volume's {volume.shape}"
            )


def _aspect(volume: Volume) -> float:
    _, sy, sx = volume.spacing_mm
    return float(sy) / float(sx)


def write_prediction_overlays(
    volume: Volume,
    label_map: np.ndarray,
    class_names: list[str],
    label_values: list[int],
    folder: Path,
    components: list[dict[str, Any]] | None = None,
    max_images: int = 6,
    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
    scale: int = 2,
) -> list[Path]:
    """PNG overlays of a prediction: each structure where it is largest, then components.

    Every image shows all structures of its slice as fills. First comes one axial slice per
    structure present in ``label_map`` (the slice where it has most voxels, in
    ``class_names`` order), then one per listed component (the slice through its centroid),
    up to ``max_images`` images in all; a slice already written is not written twice. When
    the prediction is empty, one image of the middle slice is written
    (``overlay_empty_zNNN.png``) so that there is still something to look at.

    Files are named ``overlay_<structure>_z<slice:03d>.png`` (e.g. ``overlay_lung_z023.png``,
    structure names lower-cased, other characters than letters and digits replaced by
    ``_``) and written atomically; existing files of the same name are replaced.

    Args:
        volume: The CT volume ``[z, y, x]`` in HU.
        label_map: Integer label map ``[z, y, x]`` on the volume's grid, holding
            ``label_values`` (as ``Segmentation.labels``).
        class_names: Class names, background first (as ``Segmentation.class_names``).
        label_values: Label value of each structure ``class_names[1:]``, in order (as
            ``Segmentation.label_values``; background, 0, is not listed).
        folder: Destination folder; created if missing.
        components: Components to show, each a dict with at least ``label`` (a structure
            name from ``class_names``) and ``centroid_voxel`` ``[z, y, x]`` (as
            ``lesion_detection.components`` gives, with ``label`` set to the name).
        max_images: Most images to write.
        window_hu: ``(low, high)`` HU shown black to white.
        scale: Integer upsampling factor.

    Returns:
        The paths written, in the order above.

    Raises:
        ValueError: If the label map does not lie on the volume's grid, ``label_values``
            does not give one value per structure, a component names an unknown structure
            or lacks a centroid, or ``max_images`` is negative.
    """
    labels = np.asarray(label_map)
    _checked_grid(volume, labels)
    if len(label_values) != len(class_names) - 1:
        raise ValueError(
            f"label_values {label_values} must give one value per structure "
            f"{class_names[1:]} (class_names has background first)"
        )
    if max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    structures = list(zip(class_names[1:], label_values, strict=True))
    masks = {name: labels == value for name, value in structures}

    wanted: list[tuple[str, int]] = []
    for name, _ in structures:
        if masks[name].any():
            wanted.append((name, slice_of_interest(masks[name])))
    for component in components or []:
        label = component.get("label")
        if label not in masks:
            raise ValueError(
                f"component label {label!r} is not a structure name of {class_names[1:]}"
            )
        centroid = component.get("centroid_voxel")
        if centroid is None or len(centroid) != 3:
            raise ValueError(f"component {component!r} lacks a [z, y, x] centroid_voxel")
        z = int(np.clip(round(float(centroid[0])), 0, volume.shape[0] - 1))
        wanted.append((str(label), z))
    if not wanted:
        wanted.append(("empty", volume.shape[0] // 2))

    aspect = _aspect(volume)
    written: list[Path] = []
    slices_done: set[int] = set()
    for name, z in wanted:
        if len(written) >= max_images:
            break
        if z in slices_done:  # every image shows all structures: same slice, same image
            continue
        slices_done.add(z)
        path = Path(folder) / f"overlay_{_file_stem(name)}_z{z:03d}.png"
        layers = [
            (masks[n][z], structure_colour(k), "fill") for k, (n, _) in enumerate(structures, 1)
        ]
        image = overlay_slice(volume.array[z], layers, window_hu, aspect, scale)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        written.append(path)
    return written


def _legend_strip(width: int) -> Image.Image:
    strip = Image.new("RGB", (width, 2 * LEGEND_ROW_PX), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    side = LEGEND_ROW_PX - 4
    for row, (colour, text, filled) in enumerate(
        [(TRUTH_COLOUR, "reference (outline)", False), (PRED_COLOUR, "prediction (fill)", True)]
    ):
        top = row * LEGEND_ROW_PX + 2
        box = (3, top, 3 + side, top + side)
        draw.rectangle(box, fill=colour if filled else None, outline=colour, width=2)
        draw.text((side + 8, top - 1), text, fill=(235, 235, 235), font=font)
    return strip


def comparison_overlay(
    volume: Volume,
    truth: np.ndarray,
    pred: np.ndarray,
    index: int,
    z: int | None = None,
    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
    scale: int = 2,
    legend: bool = True,
) -> Image.Image:
    """Reference and prediction of one structure on one axial slice.

    The reference is drawn as an outline in ``TRUTH_COLOUR`` over the prediction, a fill in
    ``PRED_COLOUR``, so missed tissue shows as an outline with grey inside and invented
    tissue as fill outside any outline.

    Args:
        volume: The CT volume ``[z, y, x]`` in HU.
        truth: Reference label map ``[z, y, x]`` on the volume's grid.
        pred: Predicted label map, same grid.
        index: The structure's value in both maps.
        z: Axial slice to show; by default ``slice_of_interest`` of reference or prediction.
        window_hu: ``(low, high)`` HU shown black to white.
        scale: Integer upsampling factor.
        legend: Add a strip under the image naming the two colours (``2 * LEGEND_ROW_PX``
            pixels high); without it, say in the caption which is which.

    Returns:
        An RGB image.

    Raises:
        ValueError: If the maps do not lie on the volume's grid or ``z`` is out of range.
    """
    t, p = np.asarray(truth) == index, np.asarray(pred) == index
    _checked_grid(volume, t, p)
    if z is None:
        z = slice_of_interest(t | p)
    if not 0 <= z < volume.shape[0]:
        raise ValueError(f"slice z={z} is outside the volume's {volume.shape[0]} slices")
    layers = [(p[z], PRED_COLOUR, "fill"), (t[z], TRUTH_COLOUR, "outline")]
    image = overlay_slice(volume.array[z], layers, window_hu, _aspect(volume), scale)
    if not legend:
        return image
    strip = _legend_strip(image.width)
    out = Image.new("RGB", (image.width, image.height + strip.height))
    out.paste(image, (0, 0))
    out.paste(strip, (0, image.height))
    return out
