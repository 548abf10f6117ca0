"""`medsight text deid`: (being written; see issue 14)."""

from __future__ import annotations

from medsight.errors import InputError


def deid() -> None:
    """Not built yet."""
    raise InputError("medsight text deid is not built yet")
