"""A threshold-and-fill lung mask for CT, used to blank out everything but the lungs.

Whole-volume classifiers that pool the strongest response (global max pooling) otherwise
lock onto the brightest, most variable structures in the field of view (ribs, spine, chest
wall) instead of a few-voxel nodule. Lung-field masking is the classic first step of nodule
pipelines; this is the simple version: air enclosed by the body (per axial slice), with
holes filled (vessels and nodules inside the lung), closed so nodules touching the pleura
stay inside, and eroded by one voxel so the chest wall's partial-volume rim is left out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsight.imaging.preprocess.geometry import enclosed_air


def lung_mask(
    array_hu: np.ndarray, threshold_hu: float = -500.0, closing_vox: int = 4
) -> np.ndarray:
    """Boolean ``[z, y, x]`` mask of the lung fields (with their vessels and nodules)."""
    air = enclosed_air(array_hu, threshold_hu)
    if not air.any():
        return air
    # drop small pockets (bowel gas, noise); a lung may come in several large parts
    labels, n = ndimage.label(air)
    if n > 1:
        sizes = ndimage.sum_labels(air, labels, index=np.arange(1, n + 1))
        air = np.isin(labels, np.nonzero(sizes > 0.05 * sizes.max())[0] + 1)
    ball = ndimage.generate_binary_structure(3, 1)
    closed = ndimage.binary_closing(air, ball, iterations=closing_vox, border_value=0)
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in closed | air])
    # one voxel in from the pleura: the bright chest wall must not line every mask
    return ndimage.binary_erosion(filled, ball, iterations=1, border_value=0)
