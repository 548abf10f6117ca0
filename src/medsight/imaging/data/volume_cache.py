"""On-disk cache of preprocessed volumes, keyed by the input files' content and the contract.

A key is the SHA-256 of every file of the input (names and bytes) plus the contract's JSON
(the plan's preprocessing), so editing a slice or the plan invalidates the entry. Entries
are float16 ``.npy`` files written atomically; a second run reads them back instead of
decoding DICOM, and `CachedVolumes` memory-maps them so the whole dataset never has to fit
in RAM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.runs.atomic import atomic_path


def input_digest(image_path: Path) -> str:
    """SHA-256 over the relative names and bytes of every file under ``image_path``."""
    h = hashlib.sha256()
    files = (
        [image_path]
        if image_path.is_file()
        else sorted(p for p in image_path.rglob("*") if p.is_file())
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

    def key(self, image_path: Path) -> str:
        h = hashlib.sha256(input_digest(image_path).encode())
        h.update(self._contract_key.encode())
        return h.hexdigest()[:32]

    def ensure(self, image_path: Path, compute: Callable[[Path], np.ndarray]) -> Path:
        """The cache file for ``image_path``, computing it with ``compute`` on a miss."""
        path = self.root / f"{self.key(image_path)}.npy"
        if path.is_file():
            try:
                header = np.load(path, mmap_mode="r", allow_pickle=False)
                if self.contract.shape is None or header.shape == tuple(self.contract.shape):
                    self.hits += 1
                    return path
            except (ValueError, OSError):
                pass  # a damaged entry is recomputed
        self.misses += 1
        array = compute(image_path).astype(np.float16)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
        return path

    def get(self, image_path: Path, compute: Callable[[Path], np.ndarray]) -> np.ndarray:
        """The cached array for ``image_path`` (read into memory)."""
        return np.load(self.ensure(image_path, compute), allow_pickle=False)


class CachedVolumes:
    """Preprocessed volumes left on disk and memory-mapped when indexed.

    Indexing with an int gives one ``(z, y, x)`` array; with a slice, list or index array a
    stacked ``(n, z, y, x)`` array. Only the volumes asked for are read, so a dataset larger
    than RAM trains batch by batch (the OS page cache keeps hot files in memory).
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> CachedVolumes:
        """The volumes at ``indices``, still on disk."""
        return CachedVolumes([self.paths[int(i)] for i in indices])

    def _load(self, i: int) -> np.ndarray:
        return np.load(self.paths[i], mmap_mode="r", allow_pickle=False)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return np.asarray(self._load(int(index)))
        chosen = range(len(self))[index] if isinstance(index, slice) else [int(i) for i in index]
        return np.stack([self._load(i) for i in chosen]) if len(chosen) else np.empty((0,))
