"""What a segmentation says about a patient: volumes per structure, size and place of each piece.

For every structure: total volume (mL) and its connected components (largest first, at
most `MAX_COMPONENTS`): volume (mL), equivalent-sphere diameter (mm), bounding-box extent
(mm), centroid as voxel index ``[z, y, x]`` and in patient coordinates (LPS mm), the axial
slice to look at, and the patient side (left/right of the image centre along the patient's
left-right axis, which for a chest CT centred on the patient is the midline). Components
come from `lesion_detection.components` (26-connectivity).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsight.evaluate.segmentation.lesion_detection import components
from medsight.imaging.io.volume import Volume

MAX_COMPONENTS = 20


def _side(centroid_lps: np.ndarray, centre_lps: np.ndarray, direction: np.ndarray) -> str:
    # LPS +x is the patient's left
    offset = float(centroid_lps[0] - centre_lps[0])
    if abs(offset) < 1e-6:
        return "midline"
    return "left" if offset > 0 else "right"


def measure_structures(
    indices: np.ndarray, volume: Volume, class_names: list[str]
) -> dict[str, Any]:
    """Volumes and components of each structure of a label map on ``volume``'s grid.

    Args:
        indices: channel indices (0 background, k = ``class_names[k]``), ``[z, y, x]``.
        volume: the image the map belongs to (geometry only).
        class_names: background first.

    Returns:
        ``{"structures": {name: {"volume_ml", "n_components", "components": [...]}}}``;
        JSON-serialisable.
    """
    affine = volume.affine_lps()
    spacing = volume.spacing_mm
    voxel_ml = float(np.prod(spacing)) / 1000.0
    centre_index = np.array([(n - 1) / 2 for n in volume.shape[::-1]] + [1.0])  # (x, y, z, 1)
    centre_lps = (affine @ centre_index)[:3]
    out: dict[str, Any] = {}
    for k, name in enumerate(class_names[1:], start=1):
        mask = indices == k
        pieces = components(mask, spacing) if mask.any() else []
        pieces = sorted(pieces, key=lambda c: -c["volume_mm3"])
        described = []
        for piece in pieces[:MAX_COMPONENTS]:
            z, y, x = piece["centroid_voxel"]
            lps = (affine @ np.array([x, y, z, 1.0]))[:3]
            start, stop = np.array(piece["bbox"]["start"]), np.array(piece["bbox"]["stop"])
            described.append(
                {
                    "volume_ml": round(float(piece["volume_ml"]), 3),
                    "diameter_mm": round(float(piece["diameter_mm"]), 1),
                    "extent_mm": [round(float(e), 1) for e in (stop - start) * np.array(spacing)],
                    "centroid_voxel": [round(float(v), 1) for v in (z, y, x)],
                    "centroid_lps_mm": [round(float(v), 1) for v in lps],
                    "slice": int(round(z)),
                    "side": _side(lps, centre_lps, volume.direction),
                }
            )
        out[name] = {
            "volume_ml": round(float(mask.sum()) * voxel_ml, 3),
            "n_components": len(pieces),
            "components": described,
        }
    return {"structures": out}
