"""Fixtures of the EHR de-identification tests."""

from __future__ import annotations

import pytest
from deid_canary_bundle import bundle


@pytest.fixture
def canary_bundle() -> dict:
    """The canary patient's bundle (a fresh copy per test)."""
    return bundle()
