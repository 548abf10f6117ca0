"""A synthetic cohort shared by the synth tests (written once per module that asks for it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.ehr.synth.formats import write_synthetic_ehr


@pytest.fixture(scope="module")
def meds_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MEDS variant, 600 patients, seed 0."""
    return write_synthetic_ehr(tmp_path_factory.mktemp("synth") / "meds", 600, 0, "meds")
