"""Entity-level precision, recall and F1 per type: exact spans and overlapping spans.

Exact scoring compares sets of ``(start, end, type)`` per note. That is what seqeval's strict
IOB2 mode computes when entities do not overlap (the tests check the two agree), but the
rule pipeline's entities do overlap ("right upper lobe nodule" holds the anatomy "right upper
lobe" inside a finding), and one BIO tag sequence cannot hold nested spans, so sets are used
for every input rather than seqeval on a lossy tagging.

Overlap scoring (the i2b2 2010 "inexact" match): a predicted span is correct if it shares at
least one character with a gold span of its type; a gold span is found if some predicted span
of its type shares a character with it. Precision and recall therefore have their own
numerators (two predictions on one gold span both count as correct).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medsight.text.evaluate.paired_notes import paired_notes
from medsight.text.evaluate.rates import prf
from medsight.text.evaluate.span_fields import span_key


def _overlaps(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def entity_scores(
    gold: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
    predicted: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
    types: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Exact and overlap P/R/F1 per entity type and micro-averaged over types.

    Args:
        gold: One span list per note (or a mapping note id -> spans); a span is a dict or a
            record with ``start``, ``end`` (character offsets, end exclusive) and ``type``.
        predicted: The same for the predictions.
        types: Types to score (spans of other types are ignored); default every type seen.

    Returns:
        ``{"n_notes", "types", "exact": {"per_type": {type: PRF}, "micro": PRF,
        "macro_f1"}, "overlap": {...same...}}`` where PRF is ``{"precision", "recall", "f1",
        "tp_predicted", "tp_gold", "n_predicted", "n_gold"}`` (``None`` where a ratio is 0/0).

    Raises:
        ValueError: If the inputs do not pair up note by note or a span is malformed.
    """
    pairs = [
        (key, {span_key(s) for s in g}, {span_key(s) for s in p})
        for key, g, p in paired_notes(gold, predicted)
    ]
    if types is None:
        seen = {k[2] for _, g, p in pairs for k in g | p}
        types = sorted(seen)
    wanted = list(types)
    counts = {
        mode: {t: {"tp_pred": 0, "n_pred": 0, "tp_gold": 0, "n_gold": 0} for t in wanted}
        for mode in ("exact", "overlap")
    }
    for _, gold_spans, pred_spans in pairs:
        for t in wanted:
            g = [s for s in gold_spans if s[2] == t]
            p = [s for s in pred_spans if s[2] == t]
            exact = len(set(g) & set(p))
            c = counts["exact"][t]
            c["tp_pred"] += exact
            c["tp_gold"] += exact
            c["n_pred"] += len(p)
            c["n_gold"] += len(g)
            c = counts["overlap"][t]
            c["tp_pred"] += sum(any(_overlaps(s, q) for q in g) for s in p)
            c["tp_gold"] += sum(any(_overlaps(s, q) for q in p) for s in g)
            c["n_pred"] += len(p)
            c["n_gold"] += len(g)
    result: dict[str, Any] = {"n_notes": len(pairs), "types": wanted}
    for mode, per_type in counts.items():
        table = {
            t: prf(c["tp_pred"], c["n_pred"], c["tp_gold"], c["n_gold"])
            for t, c in per_type.items()
        }
        total = {
            k: sum(c[k] for c in per_type.values())
            for k in ("tp_pred", "n_pred", "tp_gold", "n_gold")
        }
        f1s = [row["f1"] for row in table.values() if row["f1"] is not None]
        result[mode] = {
            "per_type": table,
            "micro": prf(total["tp_pred"], total["n_pred"], total["tp_gold"], total["n_gold"]),
            "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        }
    return result
