"""Shared fixtures: small synthetic series written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.synth.chest_ct import write_chest_ct_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case synthetic chest-CT dataset (seed 7); returns its folder."""
    out = tmp_path_factory.mktemp("chest") / "data"
    write_chest_ct_dataset(out, 6, seed=7, workers=1)
    return out
