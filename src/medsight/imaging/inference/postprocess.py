"""Post-processing of label maps: the rules chosen on validation, applied at inference.

Per structure, two optional rules (nnU-Net's, plus a size filter for lesions):

* ``keep_largest``: keep only the largest connected component (organs that come in one
  piece; 26-connectivity in 3D);
* ``min_volume_mm3``: remove components smaller than this (specks of false positives).

Removed voxels become background. Rules are chosen on the validation split by
`medsight.imaging.evaluate.postprocess_selection` and saved as ``RUN/postprocess.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import ndimage

from medsight.errors import InputError

POSTPROCESS_FILE = "postprocess.json"


class StructureRule(BaseModel):
    """What is done to one structure's mask."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep_largest: bool = False
    min_volume_mm3: float = Field(default=0.0, ge=0)


class PostprocessRules(BaseModel):
    """Rules per structure name (structures not listed are left as predicted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: dict[str, StructureRule] = {}
    notes: list[str] = []


def _structure(ndim: int) -> np.ndarray:
    return ndimage.generate_binary_structure(ndim, ndim)


def apply_rule(mask: np.ndarray, spacing_mm: tuple[float, ...], rule: StructureRule) -> np.ndarray:
    """``mask`` (bool) after ``rule``."""
    if not mask.any() or (not rule.keep_largest and rule.min_volume_mm3 <= 0):
        return mask
    labelled, n = ndimage.label(mask, structure=_structure(mask.ndim))
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes[1:] * math.prod(spacing_mm) >= rule.min_volume_mm3
    if rule.keep_largest and keep[1:].any():
        largest = 1 + int(np.argmax(np.where(keep[1:], sizes[1:], -1)))
        keep[1:] = False
        keep[largest] = True
    return keep[labelled]


def apply_postprocess(
    indices: np.ndarray,
    spacing_mm: tuple[float, ...],
    class_names: list[str],
    rules: PostprocessRules,
) -> np.ndarray:
    """Label indices (0 background, k = ``class_names[k]``) after the rules."""
    out = indices.copy()
    for k, name in enumerate(class_names):
        rule = rules.rules.get(name)
        if k == 0 or rule is None:
            continue
        mask = indices == k
        kept = apply_rule(mask, spacing_mm, rule)
        out[mask & ~kept] = 0
    return out


def read_postprocess(run_dir: Path) -> PostprocessRules:
    """The run's rules (no rules when the run has none yet).

    Raises:
        InputError: the file exists but is not valid.
    """
    path = Path(run_dir) / POSTPROCESS_FILE
    if not path.is_file():
        return PostprocessRules()
    try:
        return PostprocessRules.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InputError(f"{path}: invalid post-processing rules ({type(exc).__name__})") from None
