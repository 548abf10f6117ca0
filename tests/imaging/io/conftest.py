"""Fixtures for the reader tests: a tiny CT series written by medsight's own writer.

The volume is small (6 slices of 24 x 32) so that tests which rewrite its files hundreds
of times stay fast; its values are random integers in HU so that any reordering, offset or
rescale mistake shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medsight.imaging.io.ct_writer import StudyIdentity, write_ct_series
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_ct import plan_cohort


@pytest.fixture(scope="session")
def tiny_identity() -> StudyIdentity:
    """A fictitious patient and study (its name must never appear in an error)."""
    return plan_cohort(1, seed=11)[0].identity


@pytest.fixture(scope="session")
def tiny_ct() -> Volume:
    """6 x 24 x 32 HU volume, axial LPS, with an origin away from zero."""
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(6, 24, 32)).astype(np.float32)
    return Volume(array, (2.5, 0.7, 0.8), np.array([-10.0, -20.0, -30.0]), np.eye(3), "CT")


@pytest.fixture(scope="session")
def tiny_series_master(
    tmp_path_factory: pytest.TempPathFactory, tiny_ct: Volume, tiny_identity: StudyIdentity
) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "series"
    write_ct_series(tiny_ct, tiny_identity, folder)
    return folder


@pytest.fixture
def tiny_series(tiny_series_master: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny series that a test may modify."""
    return Path(shutil.copytree(tiny_series_master, tmp_path / "series"))
