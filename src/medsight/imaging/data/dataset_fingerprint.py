"""Fingerprint a manifest's dataset by reading a seeded sample of its series from disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from medsight.imaging.data.manifest import Case
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.fingerprint import DatasetFingerprint, fingerprint_dataset


def fingerprint_cases(
    cases: list[Case],
    sample: int = 40,
    seed: int = 0,
    on_case: Callable[[], None] | None = None,
    orientation: str | None = None,
) -> DatasetFingerprint:
    """Fingerprint ``cases``: class balance and patients from all, images from ``sample`` of them.

    Args:
        cases: the cases (their manifest ``modality``, where given, is passed on).
        sample: how many images to read and measure.
        seed: seed of the sample.
        on_case: called after each image read (progress).
        orientation: measure images reoriented to these axis codes (a classification plan
            reorients, `plan.CANONICAL_ORIENTATION`); None measures them as read
            (segmentation, which does not reorient).

    Raises:
        InputError: a sampled series cannot be read.
    """
    rng = np.random.default_rng(seed)
    chosen = [
        int(i) for i in sorted(rng.choice(len(cases), size=min(sample, len(cases)), replace=False))
    ]

    def volumes() -> Iterator[Volume]:
        for i in chosen:
            yield read_image(cases[i].image_path)
            if on_case:
                on_case()

    return fingerprint_dataset(
        volumes(),
        [c.label for c in cases],
        [c.patient_id for c in cases],
        seed=seed,
        declared_modalities=[cases[i].modality for i in chosen],
        orientation=orientation,
    )
