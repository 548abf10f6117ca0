"""A small synthetic notes corpus shared by the synth tests (invented cohorts, seed 3)."""

from pathlib import Path

import pytest

from medsight.text.synth.notes_corpus import write_notes_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notes") / "corpus"
    write_notes_corpus(out, 3, reports=120, discharge=60, feedback=90)
    return out
