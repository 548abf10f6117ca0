"""De-identification scores: recall per PHI type, precision, and leaked gold PHI strings.

Recall is what protects patients, so it is strict and type-blind: a gold PHI span counts as
removed only when every non-space character of it lies inside some predicted span (of any
type: a name masked as a LOCATION is still masked); a span only partly covered is counted
separately as ``partial`` and not recalled. Precision is lenient: a predicted span is correct
when it overlaps a gold span.

A leak is a gold PHI string (stripped) found verbatim in the de-identified text of its own
note, case-sensitive and not inside a longer word or number ("12" does not leak through
"2012"; an age over 89 written "90+" is Safe Harbor's category, not a leak). This also
counts a string that the de-identifier replaced at its gold position but left standing
elsewhere in the note, and a surrogate that happens to equal an original (a shifted date
landing on another date of the note): either may reveal it. The strings themselves are
never returned, only counts and note keys.

Ages: HIPAA's Safe Harbor (and the issue) makes only ages over 89 identifying, while i2b2-style
gold (the synthetic corpus's) marks every age. By default (``ages_over``) a gold AGE span
whose number is at most 89 is left out of recall and leaks, and counted as
``ages_not_phi``; it still makes a prediction on it correct for precision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from medsight.text.evaluate.rates import ratio
from medsight.text.evaluate.span_fields import span_key


def _text_of(note: Any) -> str:
    return note if isinstance(note, str) else str(note.text)


def _key_of(note: Any, index: int) -> str:
    note_id = getattr(note, "note_id", None)
    return str(note_id) if note_id else str(index)


def _covered(text: str, start: int, end: int, masks: list[tuple[int, int]]) -> tuple[bool, bool]:
    """(fully covered, partly covered) for the non-space characters of ``text[start:end]``."""
    chars = [i for i in range(start, end) if not text[i].isspace()]
    inside = [any(s <= i < e for s, e in masks) for i in chars]
    return (bool(inside) and all(inside)), any(inside)


def _age(text: str) -> int:
    """The number in an AGE span (large when there is none, so it stays PHI)."""
    digits = re.search(r"\d+", text)
    return int(digits.group()) if digits else 10**9


def leaked(gold_string: str, deidentified: str, kind: str = "") -> bool:
    """Whether ``gold_string`` stands in ``deidentified`` as a whole word or number.

    For an AGE, Safe Harbor's own category "90+" (an age over 89 written as 90 or older) is
    not a leak of the age 90.
    """
    needle = gold_string.strip()
    if not needle:
        return False
    after = r"(?![A-Za-z0-9+])" if kind == "AGE" else r"(?![A-Za-z0-9])"
    pattern = r"(?<![A-Za-z0-9])" + re.escape(needle) + after
    return re.search(pattern, deidentified) is not None


def deid_scores(
    notes: Sequence[Any],
    gold_spans: Sequence[Sequence[Any]],
    predicted_spans: Sequence[Sequence[Any]],
    deidentified_texts: Sequence[str],
    ages_over: int | None = 89,
) -> dict[str, Any]:
    """Recall per PHI type, precision and leak counts over a set of notes.

    Args:
        notes: The original notes: strings or records with ``text`` (and ``note_id``).
        gold_spans: Per note, the gold PHI spans (``start``, ``end``, ``type``) in the
            original's offsets.
        predicted_spans: Per note, the spans the de-identifier masked, original offsets.
        deidentified_texts: Per note, the de-identified text.
        ages_over: Gold ages up to this number are not PHI (None: every AGE span is).

    Returns:
        ``{"n_notes", "n_gold", "n_predicted", "recall", "precision", "f1", "partial",
        "leaked", "leaked_notes", "ages_not_phi", "per_type": {type: {"n_gold", "recalled",
        "recall", "partial", "leaked"}}}``; ``leaked_notes`` lists the ids (or indices) of
        notes with a leak.

    Raises:
        ValueError: If the four sequences differ in length or a span lies outside its note.
    """
    lengths = {len(notes), len(gold_spans), len(predicted_spans), len(deidentified_texts)}
    if len(lengths) != 1:
        raise ValueError(
            "notes, gold_spans, predicted_spans and deidentified_texts differ in length: "
            f"{len(notes)}, {len(gold_spans)}, {len(predicted_spans)}, {len(deidentified_texts)}"
        )
    per_type: dict[str, dict[str, int]] = {}
    n_pred = correct_pred = 0
    leaked_notes: list[str] = []
    ages_not_phi = 0
    for index, (note, gold, pred, deid) in enumerate(
        zip(notes, gold_spans, predicted_spans, deidentified_texts, strict=True)
    ):
        text = _text_of(note)
        masks = [span_key(p)[:2] for p in pred]
        gold_keys = [span_key(g) for g in gold]
        for start, end, _ in gold_keys + [(s, e, "") for s, e in masks]:
            if start < 0 or end > len(text):
                raise ValueError(f"note {index}: a span ({start}, {end}) lies outside the text")
        n_pred += len(masks)
        correct_pred += sum(any(s < ge and gs < e for gs, ge, _ in gold_keys) for s, e in masks)
        note_leaked = False
        for start, end, kind in gold_keys:
            if kind == "AGE" and ages_over is not None and _age(text[start:end]) <= ages_over:
                ages_not_phi += 1
                continue
            row = per_type.setdefault(kind, {"n_gold": 0, "recalled": 0, "partial": 0, "leaked": 0})
            row["n_gold"] += 1
            full, some = _covered(text, start, end, masks)
            row["recalled"] += full
            row["partial"] += some and not full
            if leaked(text[start:end], deid, kind):
                row["leaked"] += 1
                note_leaked = True
        if note_leaked:
            leaked_notes.append(_key_of(note, index))
    n_gold = sum(r["n_gold"] for r in per_type.values())
    recalled = sum(r["recalled"] for r in per_type.values())
    recall = ratio(recalled, n_gold)
    precision = ratio(correct_pred, n_pred)
    f1 = None
    if recall is not None and precision is not None:
        f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    return {
        "n_notes": len(notes),
        "n_gold": n_gold,
        "n_predicted": n_pred,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "partial": sum(r["partial"] for r in per_type.values()),
        "leaked": sum(r["leaked"] for r in per_type.values()),
        "leaked_notes": leaked_notes,
        "ages_not_phi": ages_not_phi,
        "per_type": {
            kind: {**row, "recall": ratio(row["recalled"], row["n_gold"])}
            for kind, row in sorted(per_type.items())
        },
    }
