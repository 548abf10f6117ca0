"""Scaling of raw attribution maps to ``[0, 1]``, the range every heatmap in medsight has.

A heatmap's values are relative: 1 marks the most attributed voxel of *this* map, so maps
of different methods, models and inputs can share one colour scale in an overlay.
"""

from __future__ import annotations

import numpy as np


def scaled_to_unit(raw: np.ndarray, zero_at: float | None = None) -> np.ndarray:
    """``raw`` mapped linearly onto ``[0, 1]`` (minimum to 0, maximum to 1), as float32.

    Non-finite values count as 0 before scaling.

    Args:
        raw: An attribution map of any shape.
        zero_at: The value that maps to 0 instead of the minimum, for maps whose 0 means
            "no effect" (an occlusion map's score drop); values below it become 0.

    Returns:
        The scaled map, same shape; all zeros when the map is constant to within a
        millionth of its magnitude (no voxel is attributed more than another, so none is
        highlighted).
    """
    heat = np.nan_to_num(np.asarray(raw, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if heat.size == 0:
        return heat
    low = float(heat.min()) if zero_at is None else zero_at
    high = float(heat.max())
    # relative: an untrained network's map may peak at 1e-15 and still have a shape
    if not high - low > 1e-6 * max(abs(high), abs(low)):
        return np.zeros(heat.shape, dtype=np.float32)
    return np.clip((heat - low) / (high - low), 0.0, 1.0).astype(np.float32)
