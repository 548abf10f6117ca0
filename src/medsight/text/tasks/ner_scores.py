"""A tagger's (or the rules') spans scored against gold, with patient-bootstrap 95% CIs.

The point estimates are the text modality's scorers (`medsight.text.evaluate`:
`entity_scores` for exact and overlap P/R/F1 per type and micro, `deid_scores` for PHI
recall per type, masking precision and leaked gold strings), so every text component counts
the same way. For the intervals each note is scored on its own, giving per-note counts; a
bootstrap resample is then a weighted sum of those counts (`medsight.evaluate.bootstrap`
weights: patients drawn with replacement, a patient's notes together), so 1000 resamples
cost a few matrix products instead of 1000 rescorings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medsight.evaluate.bootstrap import patient_resample_weights, percentile_interval
from medsight.text.evaluate.deid_scores import deid_scores
from medsight.text.evaluate.entity_scores import entity_scores

Span = tuple[int, int, str]
#: count columns of a per-note table: matched predictions, predictions, found gold, gold
COUNTS = ("tp_predicted", "n_predicted", "tp_gold", "n_gold")


def _dicts(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [{"start": s, "end": e, "type": t} for s, e, t in spans]


def tagged_text(text: str, spans: Sequence[Span]) -> str:
    """``text`` with every span replaced by ``[TYPE]`` (what de-identification by tags leaves)."""
    out, last = [], 0
    for start, end, kind in sorted(spans):
        if start < last:
            continue
        out += [text[last:start], f"[{kind}]"]
        last = end
    return "".join(out) + text[last:]


def _prf(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 from count arrays ``(..., 4)`` (NaN where undefined)."""
    tp_p, n_p, tp_g, n_g = (counts[..., k].astype(np.float64) for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_p > 0, tp_p / n_p, np.nan)
        recall = np.where(n_g > 0, tp_g / n_g, np.nan)
        p0, r0 = np.nan_to_num(precision), np.nan_to_num(recall)
        f1 = np.where(n_p + n_g > 0, np.where(p0 + r0 > 0, 2 * p0 * r0 / (p0 + r0), 0.0), np.nan)
    return {"precision": precision, "recall": recall, "f1": f1}


def _with_ci(counts: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """P/R/F1 with intervals from per-note counts ``(notes, 4)`` and weights ``(B, notes)``."""
    point = _prf(counts.sum(0))
    samples = _prf(weights @ counts)
    out: dict[str, Any] = {
        name: percentile_interval(
            None if np.isnan(point[name]) else float(point[name]), samples[name]
        )
        for name in point
    }
    out.update({k: int(v) for k, v in zip(COUNTS, counts.sum(0), strict=True)})
    return out


def span_scores(
    texts: Sequence[str],
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    types: Sequence[str],
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact and overlap P/R/F1 per type and micro, each with a 95% patient-bootstrap CI.

    Returns:
        ``{"n_notes", "n_patients", "types", "exact": {"micro": S, "per_type": {t: S},
        "macro_f1"}, "overlap": {...}}`` where S is ``{"precision", "recall", "f1"}`` as
        ``{"point", "low", "high", "n_boot_valid"}`` plus the four counts.
    """
    types = list(types)
    per_note = np.zeros((2, len(texts), len(types), 4), np.int64)
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        scored = entity_scores([_dicts(g)], [_dicts(p)], types)
        for m, mode in enumerate(("exact", "overlap")):
            for j, kind in enumerate(types):
                row = scored[mode]["per_type"][kind]
                per_note[m, i, j] = [row[k] for k in COUNTS]
    weights = np.concatenate(list(patient_resample_weights(list(groups), n_boot, seed)))
    whole = entity_scores([_dicts(g) for g in gold], [_dicts(p) for p in predicted], types)
    result: dict[str, Any] = {
        "n_notes": len(texts),
        "n_patients": len(set(groups)),
        "types": types,
    }
    for m, mode in enumerate(("exact", "overlap")):
        result[mode] = {
            "micro": _with_ci(per_note[m].sum(1), weights),
            "per_type": {k: _with_ci(per_note[m, :, j], weights) for j, k in enumerate(types)},
            "macro_f1": whole[mode]["macro_f1"],
        }
    return result


def phi_scores(
    texts: Sequence[str],
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """De-identification view: recall per PHI type, masking precision and leaks, with CIs.

    Recall and leaks are `deid_scores`' (a gold span is removed only when all its characters
    are inside predicted spans of any type; a leak is a gold string still standing in the
    note after each predicted span is replaced by ``[TYPE]``).

    Returns:
        `deid_scores`' dict (``leaked_notes`` replaced by their count, so no note key is
        written) plus ``recall_ci`` and ``precision_ci``.
    """
    masked = [tagged_text(t, p) for t, p in zip(texts, predicted, strict=True)]
    gold_dicts = [_dicts(g) for g in gold]
    pred_dicts = [_dicts(p) for p in predicted]
    whole = deid_scores(list(texts), gold_dicts, pred_dicts, masked)
    counts = np.zeros((len(texts), 4), np.int64)
    for i in range(len(texts)):
        one = deid_scores([texts[i]], [gold_dicts[i]], [pred_dicts[i]], [masked[i]])
        correct = round((one["precision"] or 0.0) * one["n_predicted"])
        recalled = sum(r["recalled"] for r in one["per_type"].values())
        counts[i] = [correct, one["n_predicted"], recalled, one["n_gold"]]
    weights = np.concatenate(list(patient_resample_weights(list(groups), n_boot, seed)))
    ci = _with_ci(counts, weights)
    whole["leaked_notes"] = len(whole["leaked_notes"])
    return {**whole, "recall_ci": ci["recall"], "precision_ci": ci["precision"]}
