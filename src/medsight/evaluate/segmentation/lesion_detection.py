"""Per-lesion detection: which reference lesions a predicted mask finds, and what it invents.

Array conventions: binary masks of one class, axis order ``(z, y, x)`` (2-D ``(y, x)`` also
works); ``spacing_mm`` is the voxel size along the same axes in mm. Centroids and bounding
boxes are in voxel indices of the array (convert to patient coordinates with the image's
affine); volumes are in mm3 and mL, diameters in mm.

Lesions are connected components with full connectivity: 26-connectivity in 3-D (voxels
touching by a face, an edge or a corner are one lesion), 8-connectivity in 2-D. Full
connectivity keeps a nodule whose mask is joined only diagonally between thick slices as one
lesion instead of splitting it into several, which would inflate both hits and misses.

Matching criterion (the LIDC / nnDetection practice for masks): a reference lesion is
detected (a true positive) when at least one predicted component shares at least one voxel
with it; otherwise it is a false negative. A predicted component is a false positive when
it shares no voxel with the reference foreground. One predicted component covering two
lesions detects both; a lesion found by two pieces counts once. Since "any overlap" is
lenient, each lesion also carries ``best_dice``, the Dice of its best overlapping predicted
component, so a barely-touched lesion can be told from a well-segmented one.

Components smaller than ``min_volume_mm3`` are ignored on both sides: such a reference
lesion is not counted as one to find, and such a predicted component neither detects
anything nor counts as a false positive. A predicted component that touches reference
foreground is never a false positive, even if the lesion it touches is below the size floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from medsight.evaluate.segmentation.segmentation_metrics import checked_spacing

CONNECTIVITY_DOC = "full (26-connectivity in 3-D, 8 in 2-D)"


def _checked_mask(mask: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if not (m.dtype == np.bool_ or np.issubdtype(m.dtype, np.integer)):
        raise ValueError(
            f"{name} must be a boolean (or integer 0/1) mask, got dtype {m.dtype}; "
            "threshold probabilities first"
        )
    if m.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D or 3-D, got shape {m.shape}")
    return m.astype(bool, copy=False)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary mask with full connectivity.

    Args:
        mask: Binary mask, 2-D or 3-D.

    Returns:
        ``(labels, n)``: an ``int32`` array numbering the components ``1..n`` (0 is
        background, order as ``scipy.ndimage.label`` gives it) and ``n``.
    """
    m = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(m.ndim, m.ndim)
    labels, n = ndimage.label(m, structure=structure, output=np.int32)
    return labels, int(n)


def equivalent_diameter_mm(volume_mm3: float) -> float:
    """Diameter of the sphere with the given volume: ``(6 V / pi) ** (1/3)``."""
    return float((6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0))


def _records(labels: np.ndarray, n: int, spacing: tuple[float, ...]) -> list[dict[str, Any]]:
    """One record per component ``1..n`` of a labelled array."""
    if n == 0:
        return []
    voxel_mm3 = math.prod(spacing)
    where = np.nonzero(labels)
    ids = labels[where]
    counts = np.bincount(ids, minlength=n + 1)
    centroids = (
        np.stack(
            [np.bincount(ids, weights=axis_index, minlength=n + 1) for axis_index in where], axis=1
        )
        / np.maximum(counts, 1)[:, None]
    )
    boxes = ndimage.find_objects(labels, max_label=n)
    records = []
    for k in range(1, n + 1):
        volume_mm3 = float(counts[k]) * voxel_mm3
        box = boxes[k - 1]
        assert box is not None  # every label 1..n occurs in an ndimage.label output
        records.append(
            {
                "label": k,
                "n_voxels": int(counts[k]),
                "volume_mm3": volume_mm3,
                "volume_ml": volume_mm3 / 1000.0,
                "diameter_mm": equivalent_diameter_mm(volume_mm3),
                "centroid_voxel": [float(c) for c in centroids[k]],
                "bbox": {"start": [s.start for s in box], "stop": [s.stop for s in box]},
            }
        )
    return records


def components(mask: np.ndarray, spacing_mm: Sequence[float]) -> list[dict[str, Any]]:
    """Size and location of every connected component of a binary mask.

    Meant for reporting, e.g. the size and position of each predicted nodule.

    Args:
        mask: Binary mask ``(z, y, x)``.
        spacing_mm: Voxel size ``(z, y, x)`` in mm.

    Returns:
        One JSON-serialisable dict per component, in ``scipy.ndimage.label`` order::

            {"label": int, "n_voxels": int, "volume_mm3": float, "volume_ml": float,
             "diameter_mm": float, "centroid_voxel": [z, y, x],
             "bbox": {"start": [z, y, x], "stop": [z, y, x]}}

        ``diameter_mm`` is the diameter of the sphere of equal volume; ``centroid_voxel``
        is the mean voxel index (fractional); ``bbox`` is half-open, like Python slices.

    Raises:
        ValueError: If the mask is not boolean/integer or not 2-D/3-D, or the spacing does
            not match it.
    """
    m = _checked_mask(mask, "mask")
    spacing = checked_spacing(spacing_mm, m.ndim)
    labels, n = label_components(m)
    return _records(labels, n, spacing)


@dataclass(frozen=True)
class LesionResult:
    """Outcome of matching predicted components to reference lesions for one case.

    Attributes:
        true_lesions: One record per reference lesion (see ``components``) with
            ``"detected": bool`` and ``"best_dice": float`` added.
        pred_components: One record per predicted component with ``"matched": bool``
            (touches reference foreground) added.
        min_volume_mm3: Size floor that was applied to both sides.
    """

    true_lesions: tuple[dict[str, Any], ...]
    pred_components: tuple[dict[str, Any], ...]
    min_volume_mm3: float = 0.0

    @property
    def tp(self) -> int:
        """Reference lesions detected."""
        return sum(1 for lesion in self.true_lesions if lesion["detected"])

    @property
    def fn(self) -> int:
        """Reference lesions missed."""
        return len(self.true_lesions) - self.tp

    @property
    def fp(self) -> int:
        """Predicted components touching no reference foreground."""
        return sum(1 for comp in self.pred_components if not comp["matched"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, the shape ``segmentation_summary`` reads.

        Returns:
            ``{"n_true", "n_pred", "tp", "fn", "fp"}`` (ints), ``"min_volume_mm3"``,
            ``"connectivity"`` (a description) and the record lists ``"true_lesions"`` and
            ``"pred_components"``.
        """
        return {
            "n_true": len(self.true_lesions),
            "n_pred": len(self.pred_components),
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "min_volume_mm3": float(self.min_volume_mm3),
            "connectivity": CONNECTIVITY_DOC,
            "true_lesions": [dict(r) for r in self.true_lesions],
            "pred_components": [dict(r) for r in self.pred_components],
        }


def detect_lesions(
    pred_mask: np.ndarray,
    true_mask: np.ndarray,
    spacing_mm: Sequence[float],
    min_volume_mm3: float = 0.0,
) -> LesionResult:
    """Match predicted connected components to reference lesions (see module docstring).

    Args:
        pred_mask: Predicted binary mask of one class, ``(z, y, x)``.
        true_mask: Reference binary mask, same shape.
        spacing_mm: Voxel size ``(z, y, x)`` in mm.
        min_volume_mm3: Components smaller than this, on either side, are ignored.

    Returns:
        A ``LesionResult`` with per-lesion records and the TP/FN/FP counts.

    Raises:
        ValueError: If the masks differ in shape or are not boolean/integer, the spacing
            does not fit, or ``min_volume_mm3`` is negative or not finite.
    """
    p = _checked_mask(pred_mask, "pred_mask")
    t = _checked_mask(true_mask, "true_mask")
    if p.shape != t.shape:
        raise ValueError(f"pred_mask has shape {p.shape} but true_mask has {t.shape}")
    spacing = checked_spacing(spacing_mm, p.ndim)
    if not (math.isfinite(min_volume_mm3) and min_volume_mm3 >= 0):
        raise ValueError(f"min_volume_mm3 must be finite and >= 0, got {min_volume_mm3}")

    t_labels, n_t = label_components(t)
    p_labels, n_p = label_components(p)
    true_records = _records(t_labels, n_t, spacing)
    pred_records = _records(p_labels, n_p, spacing)
    t_kept = np.array([False] + [r["volume_mm3"] >= min_volume_mm3 for r in true_records])
    p_kept = np.array([False] + [r["volume_mm3"] >= min_volume_mm3 for r in pred_records])

    # Overlap voxel counts of every (true lesion, predicted component) pair that touches.
    both = (t_labels > 0) & (p_labels > 0)
    pairs, overlap = np.unique(
        t_labels[both].astype(np.int64) * (n_p + 1) + p_labels[both], return_counts=True
    )
    pair_t, pair_p = np.divmod(pairs, n_p + 1)
    t_sizes = np.array([0] + [r["n_voxels"] for r in true_records])
    p_sizes = np.array([0] + [r["n_voxels"] for r in pred_records])

    best_dice = np.zeros(n_t + 1)
    usable = p_kept[pair_p]
    dice = 2.0 * overlap / (t_sizes[pair_t] + p_sizes[pair_p])
    np.maximum.at(best_dice, pair_t[usable], dice[usable])
    detected = np.zeros(n_t + 1, dtype=bool)
    detected[pair_t[usable]] = True
    touches_truth = np.zeros(n_p + 1, dtype=bool)
    touches_truth[pair_p] = True

    true_lesions = tuple(
        {**r, "detected": bool(detected[r["label"]]), "best_dice": float(best_dice[r["label"]])}
        for r in true_records
        if t_kept[r["label"]]
    )
    pred_components = tuple(
        {**r, "matched": bool(touches_truth[r["label"]])}
        for r in pred_records
        if p_kept[r["label"]]
    )
    return LesionResult(true_lesions, pred_components, float(min_volume_mm3))
