"""Same seed, same bytes (every format); another seed, other bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from medsight.ehr.synth.formats import FORMATS, write_synthetic_ehr


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_same_seed_writes_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    first = _digest(write_synthetic_ehr(tmp_path / "a", 120, 7, fmt))
    second = _digest(write_synthetic_ehr(tmp_path / "b", 120, 7, fmt))
    other = _digest(write_synthetic_ehr(tmp_path / "c", 120, 8, fmt))
    assert first and first == second
    assert set(first) == set(other)
    data = [name for name in first if not name.startswith("metadata")]
    assert any(first[name] != other[name] for name in data)
