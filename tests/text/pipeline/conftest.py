"""Shared fixtures of the rule-pipeline tests: one pipeline per session, the radlabels reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.text.pipeline.analyze import TextPipeline, default_pipeline

REPO = Path(__file__).resolve().parents[3]
RADLABELS = REPO.parent / "shared" / "data" / "text" / "radlabels"


@pytest.fixture(scope="session")
def pipeline() -> TextPipeline:
    return default_pipeline()


@pytest.fixture(scope="session")
def radlabels_reports() -> Path:
    folder = RADLABELS / "reports"
    if not folder.is_dir():
        pytest.skip("radlabels reports not present (../shared/data/text/radlabels)")
    return folder
