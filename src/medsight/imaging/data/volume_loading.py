"""Read and preprocess every case of a manifest into one array, through the on-disk cache."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from medsight.imaging.data.manifest import Case
from medsight.imaging.data.volume_cache import CachedVolumes, VolumeCache
from medsight.imaging.io.read_image import read_image
from medsight.imaging.preprocess.contract import PreprocessContract, apply_contract

#: worker processes are spawned, not forked: a fork after torch has started its OpenMP
#: threads (e.g. training, then caching another dataset in one process) can deadlock
SPAWN = multiprocessing.get_context("spawn")


def preprocess_image(image_path: Path, contract: PreprocessContract) -> np.ndarray:
    """Read an image (DICOM series or file, NIfTI, PNG) from disk and apply the contract."""
    return apply_contract(read_image(image_path, workers=1), contract)


def _ensure_one(args: tuple[Path, Path, PreprocessContract]) -> tuple[Path, bool]:
    image_path, cache_root, contract = args
    cache = VolumeCache(cache_root, contract)
    entry = cache.ensure(image_path, lambda p: preprocess_image(p, contract))
    return entry, cache.hits == 1


def load_cases(
    cases: list[Case],
    contract: PreprocessContract,
    cache_root: Path,
    workers: int = 1,
    on_case: Callable[[], None] | None = None,
) -> tuple[CachedVolumes, int]:
    """Preprocess ``cases`` into the cache (reusing what is there) and return them, in order.

    Returns:
        The cached volumes (float16, memory-mapped on access) and how many were cache hits.

    Raises:
        InputError: an image cannot be read (the message names it).
    """
    jobs = [(c.image_path, cache_root, contract) for c in cases]
    entries: list[Path] = []
    hits = 0
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=SPAWN) as pool:
            for entry, hit in pool.map(_ensure_one, jobs, chunksize=4):
                entries.append(entry)
                hits += hit
                if on_case:
                    on_case()
    else:
        for job in jobs:
            entry, hit = _ensure_one(job)
            entries.append(entry)
            hits += hit
            if on_case:
                on_case()
    return CachedVolumes(entries), hits
