"""Where the real EHR extracts are, and a reader of a written MEDS folder for the io tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import meds
import polars as pl
import pyarrow.parquet as pq
import pytest

from medsight.ehr.io.meds_dataset import validate_meds

#: real extracts no one here wrote (see its README); absent on a user's own clone
EHR_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ehr"


def _real_extract(name: str) -> Path:
    folder = EHR_DATA / name
    if not folder.is_dir():
        pytest.skip(f"no real extract at {folder}")
    return folder


def _read_events(root: Path) -> pl.DataFrame:
    """Every event of a MEDS folder, after checking every shard against the MEDS schema."""
    for path in sorted((root / "data").rglob("*.parquet")):
        meds.DataSchema.align(pq.read_table(path))
    return pl.read_parquet(sorted((root / "data").rglob("*.parquet")))


def _checked(root: Path) -> dict[str, int]:
    counts = validate_meds(root)
    meds.CodeMetadataSchema.align(pq.read_table(root / "metadata" / "codes.parquet"))
    meds.SubjectSplitSchema.align(pq.read_table(root / "metadata" / "subject_splits.parquet"))
    return counts


@pytest.fixture
def real_extract() -> Callable[[str], Path]:
    """name -> the extract's folder (skips the test with a one-line reason when absent)."""
    return _real_extract


@pytest.fixture
def read_events() -> Callable[[Path], pl.DataFrame]:
    """MEDS folder -> every event, each shard checked against the MEDS event schema."""
    return _read_events


@pytest.fixture
def checked() -> Callable[[Path], dict[str, int]]:
    """MEDS folder -> `validate_meds` counts, metadata checked against the MEDS schemas."""
    return _checked
