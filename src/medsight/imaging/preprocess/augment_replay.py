"""Augmentation records and their replay.

A record is the JSON-serialisable dict ``{"transform": name, "params": {...}}`` that a random
augmentation (`augment_random`) writes after drawing its parameters. Replaying it calls the
deterministic transform of that name with those parameters, so the output is reproduced bit
for bit, from memory or from a JSON file. Replaying the image's records on its mask with
``label=True`` applies the same geometry with nearest-neighbour interpolation and skips the
intensity transforms, so image and mask stay aligned (TorchIO's ``Subject.history`` idea).

Arrays are 2D ``[y, x]`` or 3D ``[z, y, x]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypedDict

import numpy as np

from medsight.errors import InputError
from medsight.imaging.preprocess.augment_geometry import elastic, flip, rotate, scale, shift
from medsight.imaging.preprocess.augment_intensity import add_noise, bias_field, gamma


class AugmentRecord(TypedDict):
    """What one applied augmentation did: the transform's name and its parameters."""

    transform: str
    params: dict[str, Any]


#: Deterministic transforms that move voxels; called with ``label=`` as well.
GEOMETRIC_TRANSFORMS: dict[str, Callable[..., np.ndarray]] = {
    "flip": flip,
    "shift": shift,
    "rotate": rotate,
    "scale": scale,
    "elastic": elastic,
}

#: Deterministic transforms that change values only; skipped for label maps.
INTENSITY_TRANSFORMS: dict[str, Callable[..., np.ndarray]] = {
    "noise": add_noise,
    "gamma": gamma,
    "bias_field": bias_field,
}


def apply_record(array: np.ndarray, record: AugmentRecord, label: bool = False) -> np.ndarray:
    """Apply the deterministic transform a record names, with its parameters.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        record: ``{"transform": name, "params": {...}}``.
        label: the array is a label map: geometric transforms use nearest neighbour and
            keep the dtype, intensity transforms are skipped.

    Returns:
        The transformed array (float32 for images, the input dtype for labels).

    Raises:
        InputError: the record names no known transform or is malformed (records are read
            back from files a user may have edited).
    """
    try:
        name, params = record["transform"], dict(record["params"])
    except (KeyError, TypeError) as error:
        raise InputError(f"augmentation record lacks 'transform' or 'params': {error}") from None
    if name in GEOMETRIC_TRANSFORMS:
        return GEOMETRIC_TRANSFORMS[name](array, **params, label=label)
    if name in INTENSITY_TRANSFORMS:
        return array if label else INTENSITY_TRANSFORMS[name](array, **params)
    known = sorted(GEOMETRIC_TRANSFORMS) + sorted(INTENSITY_TRANSFORMS)
    raise InputError(f"unknown augmentation {name!r} in record; known: {', '.join(known)}")


def replay(array: np.ndarray, records: Iterable[AugmentRecord], label: bool = False) -> np.ndarray:
    """Apply recorded augmentations in order, reproducing the recorded output exactly.

    Args:
        array: the array the records were made on (or its mask, with ``label=True``).
        records: records as returned by a `RandomTransform` or `augmentation.augment_batch`.
        label: replay onto a label map (see `apply_record`).

    Returns:
        The augmented array: float32 for images, the input dtype for labels.

    Raises:
        InputError: a record is malformed or names no known transform.
    """
    out = np.asarray(array) if label else np.asarray(array, dtype=np.float32)
    for record in records:
        out = apply_record(out, record, label)
    return out
