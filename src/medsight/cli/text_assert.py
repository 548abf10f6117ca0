"""`medsight text assert`: (being written; see issue 14)."""

from __future__ import annotations

from medsight.errors import InputError


def assert_() -> None:
    """Not built yet."""
    raise InputError("medsight text assert is not built yet")
