"""Pairing gold and predicted span lists note by note.

Scorers take either two equally long sequences (one span list per note, same order) or two
mappings keyed by note id; a note missing from one mapping has no spans there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def paired_notes(
    gold: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
    predicted: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
) -> list[tuple[str, list[Any], list[Any]]]:
    """``[(note_key, gold_spans, predicted_spans)]`` in a stable order.

    Raises:
        ValueError: If one is a mapping and the other not, or two sequences differ in length.
    """
    if isinstance(gold, Mapping) != isinstance(predicted, Mapping):
        raise ValueError("gold and predicted must both be sequences or both be mappings")
    if isinstance(gold, Mapping) and isinstance(predicted, Mapping):
        keys = list(gold) + [k for k in predicted if k not in gold]
        return [(str(k), list(gold.get(k, ())), list(predicted.get(k, ()))) for k in keys]
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold notes but {len(predicted)} predicted notes")
    return [
        (str(i), list(g), list(p)) for i, (g, p) in enumerate(zip(gold, predicted, strict=True))
    ]
