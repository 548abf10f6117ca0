"""Assertion context scores on the entities gold and prediction share.

Entities are matched one to one within a note and type: identical spans first, then the
remaining pairs by largest character overlap. Only matched entities are scored, so these
numbers say how well the context is read for entities that were found; `entity_scores`
says how many were found. Per attribute (negation, certainty, temporality, experiencer):
accuracy over matched entities that carry a gold value, and precision/recall/F1 per value
(a prediction without the attribute counts as wrong for every value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medsight.text.evaluate.paired_notes import paired_notes
from medsight.text.evaluate.rates import prf, ratio
from medsight.text.evaluate.span_fields import span_field, span_key
from medsight.text.pipeline.annotations import CERTAINTY, EXPERIENCER, NEGATION, TEMPORALITY

#: attribute -> its values, in the order reports list them
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "negation": NEGATION,
    "certainty": CERTAINTY,
    "temporality": TEMPORALITY,
    "experiencer": EXPERIENCER,
}


def match_entities(gold: Sequence[Any], predicted: Sequence[Any]) -> list[tuple[Any, Any]]:
    """One-to-one ``(gold, predicted)`` pairs of one note: same type, exact span first.

    Raises:
        ValueError: If a span is malformed.
    """
    gold_keys = [span_key(g) for g in gold]
    pred_keys = [span_key(p) for p in predicted]
    free_gold = set(range(len(gold)))
    free_pred = set(range(len(predicted)))
    pairs: list[tuple[int, int]] = []
    by_key: dict[tuple[int, int, str], list[int]] = {}
    for j, key in enumerate(pred_keys):
        by_key.setdefault(key, []).append(j)
    for i, key in enumerate(gold_keys):
        if by_key.get(key):
            j = by_key[key].pop(0)
            pairs.append((i, j))
            free_gold.discard(i)
            free_pred.discard(j)
    candidates = []
    for i in free_gold:
        gs, ge, gt = gold_keys[i]
        for j in free_pred:
            ps, pe, pt = pred_keys[j]
            shared = min(ge, pe) - max(gs, ps)
            if pt == gt and shared > 0:
                candidates.append((-shared, i, j))
    for _, i, j in sorted(candidates):
        if i in free_gold and j in free_pred:
            pairs.append((i, j))
            free_gold.discard(i)
            free_pred.discard(j)
    return [(gold[i], predicted[j]) for i, j in sorted(pairs)]


def assertion_scores(
    gold: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
    predicted: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
    types: Sequence[str] | None = None,
    attributes: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Accuracy and per-value P/R/F1 of each assertion attribute on matched entities.

    Args:
        gold: One entity list per note (or a mapping note id -> entities): dicts or records
            with ``start``, ``end``, ``type`` and the attributes.
        predicted: The same for the predictions.
        types: Entity types to score (default all).
        attributes: Attribute -> values (default `ATTRIBUTES`).

    Returns:
        ``{"n_gold", "n_predicted", "n_matched", "attributes": {attr: {"n", "accuracy",
        "macro_f1", "values": {value: PRF}}}}``; PRF as in `entity_scores`; ``macro_f1``
        averages the values that have a defined F1.

    Raises:
        ValueError: If the inputs do not pair up note by note or a span is malformed.
    """
    attrs = dict(ATTRIBUTES if attributes is None else attributes)
    wanted = None if types is None else set(types)
    n_gold = n_pred = 0
    matched: list[tuple[Any, Any]] = []
    for _, g, p in paired_notes(gold, predicted):
        if wanted is not None:
            g = [s for s in g if span_key(s)[2] in wanted]
            p = [s for s in p if span_key(s)[2] in wanted]
        n_gold += len(g)
        n_pred += len(p)
        matched.extend(match_entities(g, p))
    table: dict[str, Any] = {}
    for attr, values in attrs.items():
        pairs = [
            (span_field(g, attr), span_field(p, attr))
            for g, p in matched
            if span_field(g, attr) is not None
        ]
        per_value = {}
        for value in values:
            tp = sum(1 for gv, pv in pairs if gv == value and pv == value)
            per_value[value] = prf(
                tp,
                sum(1 for _, pv in pairs if pv == value),
                tp,
                sum(1 for gv, _ in pairs if gv == value),
            )
        f1s = [row["f1"] for row in per_value.values() if row["f1"] is not None]
        table[attr] = {
            "n": len(pairs),
            "accuracy": ratio(sum(1 for gv, pv in pairs if gv == pv), len(pairs)),
            "macro_f1": sum(f1s) / len(f1s) if f1s else None,
            "values": per_value,
        }
    return {"n_gold": n_gold, "n_predicted": n_pred, "n_matched": len(matched), "attributes": table}
