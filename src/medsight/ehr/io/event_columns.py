"""Event columns for `MedsWriter.add` from one chunk of a source table, dropping unusable rows.

Importers build whole columns per chunk (subject, time, code, value, text, unit) with pyarrow
compute; a source row without a time (for an event that needs one) or without a code gives
no event, as MEDS has nothing to place it with.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc


def event_columns(
    subject_id: pa.Array,
    time: pa.Array | None,
    code: pa.Array,
    numeric_value: pa.Array | None = None,
    text_value: pa.Array | None = None,
    unit: pa.Array | None = None,
) -> dict[str, pa.Array]:
    """Columns of the rows that have a subject, a code and (unless ``time`` is None) a time.

    ``time=None`` makes static rows (null time, e.g. sex).
    """
    n = len(code)
    keep = pc.and_(pc.is_valid(subject_id), pc.is_valid(code))
    if time is not None:
        keep = pc.and_(keep, pc.is_valid(time))
    columns = {
        "subject_id": subject_id,
        "time": time if time is not None else pa.nulls(n, pa.timestamp("us")),
        "code": code,
        "numeric_value": numeric_value if numeric_value is not None else pa.nulls(n, pa.float64()),
        "text_value": text_value if text_value is not None else pa.nulls(n, pa.string()),
    }
    if unit is not None:
        columns["unit"] = unit
    keep = pc.fill_null(keep, False)
    return {name: pc.filter(column, keep) for name, column in columns.items()}


def prefixed(vocabulary: str, values: pa.Array) -> pa.Array:
    """``VOCABULARY//value`` for each non-null value (null stays null)."""
    text = values.cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(f"{vocabulary}//"), text, "")


def mapped(values: pa.Array, function: Callable[[str], str | None]) -> pa.Array:
    """``function`` over a string column, computed once per distinct value (null stays null)."""
    encoded = values.cast(pa.string()).dictionary_encode()
    results = [function(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
    return pa.array(results, pa.string()).take(encoded.indices)


def lookup(keys: pa.Array, known: pa.Array, values: pa.Array) -> pa.Array:
    """``values[i]`` where ``keys[j] == known[i]`` (null when the key is unknown)."""
    return pc.take(values, pc.index_in(keys, value_set=known))
