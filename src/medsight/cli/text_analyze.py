"""`medsight text analyze`: (being written; see issue 14)."""

from __future__ import annotations

from medsight.errors import InputError


def analyze() -> None:
    """Not built yet."""
    raise InputError("medsight text analyze is not built yet")
