"""A Grad-CAM heatmap drawn over its CT slice, as PNG bytes.

Slices are 2-D arrays indexed ``[y, x]`` (row 0 at the top of the image). The CT slice holds
HU-windowed intensities in ``[0, 1]`` and the heatmap attributions in ``[0, 1]``.

The figure is built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so no global
backend is switched, no figure can leak and rendering is safe from worker threads.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

FIGSIZE_IN = (5.6, 3.0)
DPI = 100


def overlay_png(
    image_slice: np.ndarray,
    heat_slice: np.ndarray,
    title: str,
    alpha: float = 0.6,
    aspect: float = 1.0,
) -> bytes:
    """The CT slice, and beside it the same slice with a 'jet' heatmap over it, titled.

    The heatmap's opacity grows with the attribution (``alpha * heat``), so unattended
    tissue stays visible instead of being tinted blue.

    Args:
        image_slice: CT slice ``[y, x]``, values in ``[0, 1]`` (shown black to white).
        heat_slice: Heatmap slice ``[y, x]`` of the same shape, values in ``[0, 1]``.
        title: Text above the image (plain text; rendered by matplotlib, not as HTML).
        alpha: Opacity of the heatmap, 0 (invisible) to 1 (opaque).
        aspect: Height / width of one pixel, i.e. row spacing / column spacing in mm, so an
            anisotropic slice (e.g. a coronal one) is drawn with its true proportions.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If the slices are not 2-D arrays of the same shape or ``alpha`` is not
            in ``[0, 1]``.
    """
    if image_slice.ndim != 2 or image_slice.shape != heat_slice.shape:
        raise ValueError(
            "image_slice and heat_slice must be 2-D and of the same shape, got "
            f"{image_slice.shape} and {heat_slice.shape}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    fig = Figure(figsize=FIGSIZE_IN)
    plain, overlaid = fig.subplots(1, 2)
    heat = np.clip(np.nan_to_num(heat_slice.astype(np.float32)), 0.0, 1.0)
    rgba = colormaps["jet"](heat)
    rgba[..., 3] = alpha * heat
    for ax in (plain, overlaid):
        ax.imshow(
            image_slice, cmap="gray", vmin=0.0, vmax=1.0, aspect=aspect, interpolation="nearest"
        )
        ax.set_axis_off()
    overlaid.imshow(rgba, aspect=aspect, interpolation="bilinear")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def blend_heatmap(
    image_slice: np.ndarray, heat_slice: np.ndarray, alpha: float = 0.6
) -> np.ndarray:
    """The slice in grey with a 'jet' heatmap over it, as an RGB uint8 array ``[y, x, 3]``.

    Same convention as `overlay_png` (opacity ``alpha * heat``), at the slice's own
    resolution and without any text, for a DICOM Secondary Capture.

    Raises:
        ValueError: If the slices are not 2-D arrays of the same shape.
    """
    if image_slice.ndim != 2 or image_slice.shape != heat_slice.shape:
        raise ValueError("image_slice and heat_slice must be 2-D and of the same shape")
    grey = np.clip(np.nan_to_num(image_slice.astype(np.float32)), 0.0, 1.0)[..., None]
    heat = np.clip(np.nan_to_num(heat_slice.astype(np.float32)), 0.0, 1.0)
    colour = colormaps["jet"](heat)[..., :3]
    weight = (alpha * heat)[..., None]
    rgb = (1.0 - weight) * grey + weight * colour
    return np.round(rgb * 255.0).astype(np.uint8)
