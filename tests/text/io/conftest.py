"""Fixtures for the note readers: a small limit on note size, so "oversized" costs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.text.io import note


@pytest.fixture
def small_note_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Notes over 100 characters (400 bytes) are refused while the test runs."""
    monkeypatch.setattr(note, "MAX_NOTE_CHARS", 100)
    return 100


@pytest.fixture
def repo_root_text() -> Path:
    """The shared real-style text (``<repo>/../shared/data/text``); skips when absent."""
    here = Path(__file__).resolve()
    root = next(p for p in here.parents if (p / "pyproject.toml").exists())
    data = root.parent / "shared" / "data" / "text"
    if not (data / "radlabels" / "reports").is_dir():
        pytest.skip("../shared/data/text/radlabels is not on this machine")
    return data
