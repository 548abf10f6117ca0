"""The classification data path holds a bounded number of volumes, however many cases there are.

Peaks are Python-heap peaks (`tracemalloc`, which numpy reports to) during a cache fill and a
fingerprint of 4x as many cases: a fill that stacked its volumes, or a fingerprint that read
every case, would grow by (at least) a volume per extra case. `bench/memory_scale.py` measures
the same on 300 vs 3,000 chest CTs, as process RSS.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case
from medsight.imaging.data.volume_loading import load_cases
from medsight.imaging.io.nifti import write_nifti
from medsight.imaging.preprocess.contract import PreprocessContract

SHAPE = (16, 48, 48)  # (z, y, x) voxels at (3, 1.5, 1.5) mm
VOLUME_BYTES = int(np.prod(SHAPE)) * 4  # one volume as read (float32)
CONTRACT = PreprocessContract(
    spacing_mm=(3.0, 1.5, 1.5), shape=(16, 40, 40), crop_to="body", mask_outside_lungs=False
)
T = TypeVar("T")


def _write_cases(root: Path, n: int) -> list[Case]:
    """``n`` distinct CT-like NIfTI volumes (a body of soft tissue with two air-filled lungs)."""
    rng = np.random.default_rng(n)
    _, y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1], 0 : SHAPE[2]]
    body = ((y - 24) / 21) ** 2 + ((x - 24) / 22) ** 2 <= 1
    lungs = body & (((y - 24) / 11) ** 2 + ((np.abs(x - 24) - 10) / 6) ** 2 <= 1)
    base = np.where(lungs, -850.0, np.where(body, 40.0, -1000.0))
    cases = []
    for i in range(n):
        path = root / f"case_{i:03d}.nii.gz"
        image = (base + rng.normal(0, 20, SHAPE)).astype(np.float32)
        write_nifti(path, image, np.diag([1.5, 1.5, 3.0, 1.0]))
        cases.append(Case(f"c{i}", f"p{i}", "ab"[i % 2], path, modality="CT"))
    return cases


def _traced(work: Callable[..., T], *args: object, **kwargs: object) -> tuple[T, int]:
    """``work(*args, **kwargs)`` and the peak of the Python heap while it ran, in bytes."""
    tracemalloc.start()
    try:
        result = work(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cache_fill_holds_a_bounded_number_of_volumes(tmp_path: Path) -> None:
    peaks = []
    for n in (8, 32):
        cases = _write_cases(tmp_path / f"data{n}", n)
        load_cases(cases[:1], CONTRACT, tmp_path / "warm")  # imports and lazy state first
        cache = tmp_path / f"cache{n}"
        (volumes, _), peak = _traced(load_cases, cases, CONTRACT, cache)
        peaks.append(peak)
        assert len(volumes) == len(list(cache.glob("*.npy"))) == n
    small, large = peaks
    assert large < small + 2 * VOLUME_BYTES, (small, large)


def test_fingerprint_reads_a_bounded_sample(tmp_path: Path) -> None:
    peaks = []
    for n in (8, 32):
        cases = _write_cases(tmp_path / f"data{n}", n)
        fingerprint_cases(cases[:1], sample=1)
        fingerprint, peak = _traced(fingerprint_cases, cases, sample=4, seed=0)
        peaks.append(peak)
        assert (fingerprint.n_cases, fingerprint.n_measured) == (n, 4)
    small, large = peaks
    assert large < small + 2 * VOLUME_BYTES, (small, large)
