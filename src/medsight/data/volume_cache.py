"""On-disk cache of preprocessed volumes, keyed by the input files' content and the contract.

A key is the SHA-256 of every file in the series (names and bytes) plus the contract's
JSON, so editing a slice or changing the contract invalidates the entry. Entries are
``.npy`` files written atomically; a second run reads them back instead of decoding DICOM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medsight.io.atomic import atomic_path
from medsight.preprocess.contract import PreprocessContract


def series_digest(series_dir: Path) -> str:
    """SHA-256 over the relative names and bytes of every file under ``series_dir``."""
    h = hashlib.sha256()
    files = (
        [series_dir]
        if series_dir.is_file()
        else sorted(p for p in series_dir.rglob("*") if p.is_file())
    )
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class VolumeCache:
    """Preprocessed arrays under ``root``; `get` computes and stores what is missing."""

    def __init__(self, root: Path, contract: PreprocessContract) -> None:
        self.root = root
        self.contract = contract
        self._contract_key = contract.model_dump_json()
        self.hits = 0
        self.misses = 0

    def key(self, series_dir: Path) -> str:
        h = hashlib.sha256(series_digest(series_dir).encode())
        h.update(self._contract_key.encode())
        return h.hexdigest()[:32]

    def get(self, series_dir: Path, compute: Callable[[Path], np.ndarray]) -> np.ndarray:
        """The cached array for ``series_dir``, computing it with ``compute`` on a miss."""
        path = self.root / f"{self.key(series_dir)}.npy"
        if path.is_file():
            try:
                array = np.load(path, allow_pickle=False)
                if self.contract.shape is None or array.shape == tuple(self.contract.shape):
                    self.hits += 1
                    return array
            except (ValueError, OSError):
                pass  # a damaged entry is recomputed
        self.misses += 1
        array = compute(series_dir).astype(np.float16)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
        return array
