"""Read and preprocess every case of a manifest into one array, through the on-disk cache."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from medsight.data.manifest import Case
from medsight.data.volume_cache import VolumeCache
from medsight.io.dicom_series import read_dicom_series
from medsight.preprocess.contract import PreprocessContract, apply_contract


def preprocess_series(series_dir: Path, contract: PreprocessContract) -> np.ndarray:
    """Read a DICOM series from disk and apply the contract (float32, ``contract.shape``)."""
    return apply_contract(read_dicom_series(series_dir, workers=1), contract)


def _load_one(args: tuple[Path, Path, PreprocessContract]) -> tuple[np.ndarray, bool]:
    series_dir, cache_root, contract = args
    cache = VolumeCache(cache_root, contract)
    array = cache.get(series_dir, lambda p: preprocess_series(p, contract))
    return array, cache.hits == 1


def load_cases(
    cases: list[Case],
    contract: PreprocessContract,
    cache_root: Path,
    workers: int = 1,
    on_case: Callable[[], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Preprocessed arrays ``(N, z, y, x)`` (float16) for ``cases``, in order.

    Returns:
        The stacked arrays and how many came from the cache.

    Raises:
        InputError: a series cannot be read (the message names it).
    """
    if contract.shape is None:
        raise ValueError("load_cases stacks whole volumes: the contract needs a fixed shape")
    out = np.empty((len(cases), *contract.shape), dtype=np.float16)
    jobs = [(c.series_dir, cache_root, contract) for c in cases]
    hits = 0
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_load_one, jobs, chunksize=4)
            for i, (array, hit) in enumerate(results):
                out[i], hits = array, hits + hit
                if on_case:
                    on_case()
    else:
        for i, job in enumerate(jobs):
            array, hit = _load_one(job)
            out[i], hits = array, hits + hit
            if on_case:
                on_case()
    return out, hits
