"""Reading a span's fields from whatever record carries it.

Gold spans come as JSON dicts (``{"start", "end", "type", ...}``), predictions as records
(`Entity`, a de-identifier's `PhiSpan`); the scorers read both through these two functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def span_field(span: Any, name: str, default: Any = None) -> Any:
    """``span[name]`` for a mapping, ``span.name`` for a record; ``default`` when absent."""
    if isinstance(span, Mapping):
        return span.get(name, default)
    return getattr(span, name, default)


def span_key(span: Any) -> tuple[int, int, str]:
    """``(start, end, type)`` of a span.

    Raises:
        ValueError: If the span has no integer start/end or its end is before its start.
    """
    start, end = span_field(span, "start"), span_field(span, "end")
    if not isinstance(start, int) or not isinstance(end, int) or end < start:
        raise ValueError(f"a span needs integer start <= end, got start={start!r} end={end!r}")
    return start, end, str(span_field(span, "type", ""))
