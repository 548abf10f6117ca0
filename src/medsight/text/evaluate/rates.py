"""Precision, recall and F1 from counts, with ``None`` where a ratio is 0/0.

``None`` rather than 0 for precision and recall: a type nobody predicted has no precision,
and a made-up 0 would read as a measurement. F1 is 0 as soon as there is anything to score
(gold items nobody found, or predictions of a type with no gold), and ``None`` only when
there is nothing of that type on either side, so a macro average never skips a miss.
"""

from __future__ import annotations


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def prf(tp_pred: int, n_pred: int, tp_gold: int, n_gold: int) -> dict[str, float | int | None]:
    """Precision, recall and F1.

    Args:
        tp_pred: Predicted items that match gold (the numerator of precision).
        n_pred: All predicted items.
        tp_gold: Gold items that were found (the numerator of recall); equals ``tp_pred``
            for one-to-one matching, may differ for overlap matching.
        n_gold: All gold items.

    Returns:
        ``{"precision", "recall", "f1", "tp_predicted", "tp_gold", "n_predicted", "n_gold"}``.
    """
    precision = ratio(tp_pred, n_pred)
    recall = ratio(tp_gold, n_gold)
    f1: float | None = None
    if n_pred + n_gold > 0:
        p, r = precision or 0.0, recall or 0.0
        f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp_predicted": tp_pred,
        "tp_gold": tp_gold,
        "n_predicted": n_pred,
        "n_gold": n_gold,
    }
