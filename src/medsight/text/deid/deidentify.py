"""`deidentify_text`: a note in, its de-identified text and the spans masked out.

The service (before it stores a note), `medsight text deid` and the bench all call this one
function. Two modes: ``surrogate`` writes keyed fakes (`Surrogates`) so the text still reads
like a note and one patient's notes stay consistent with each other and with the patient's
de-identified EHR record (dates move by the same `offset_days`); ``tag`` writes ``[NAME]``,
``[DATE]``, ... Recall first: whatever any rule or an optional trained tagger marks is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from medsight.errors import InputError
from medsight.patient_date_offset import offset_days
from medsight.text.deid.detect_phi import detect_phi
from medsight.text.deid.phi_span import PhiSpan
from medsight.text.deid.surrogates import Surrogates
from medsight.text.io.note import MAX_NOTE_CHARS

MODES = ("surrogate", "tag")
MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class DeidResult:
    """A de-identified note.

    Attributes:
        text: the note with every span replaced.
        spans: what was masked, in the INPUT's offsets, with each span's replacement.
        offset_days: how far dates moved (surrogate mode; 0 in tag mode).
    """

    text: str
    spans: list[PhiSpan]
    offset_days: int

    def counts(self) -> dict[str, int]:
        """Spans per PHI type (PHI-free: a summary may print it)."""
        out: dict[str, int] = {}
        for span in self.spans:
            out[span.type] = out.get(span.type, 0) + 1
        return out


def deidentify_text(
    text: str,
    *,
    key: str,
    patient: str | None = None,
    mode: str = "surrogate",
    source: str = "",
    extra_spans: Iterable[tuple[int, int, str]] = (),
) -> DeidResult:
    """De-identify one note.

    Args:
        text: the note.
        key: the de-identification key (at least 16 characters; the same key as the EHR
            and imaging de-identification, so dates move alike).
        patient: the patient's original identifier: surrogates and the date offset are keyed
            by it (`medsight.patient_date_offset.offset_days(key, patient)`, as the EHR side).
            Without one, both are keyed by ``source`` (the note's identity), so the note is
            consistent with itself only.
        mode: ``surrogate`` or ``tag``.
        source: where the note came from (file and row, or note id), for error messages and
            the keying above; never a value from the note.
        extra_spans: ``(start, end, type)`` spans found by a trained tagger, unioned with the
            rules' spans.

    Returns:
        The de-identified text and the spans masked (input offsets).

    Raises:
        InputError: the note is longer than `MAX_NOTE_CHARS`.
        ValueError: an unknown ``mode``, a key under 16 characters or a bad extra span
            (programming errors: the CLI and the service check these first).
    """
    if len(text) > MAX_NOTE_CHARS:
        raise InputError(f"{source or 'note'}: longer than {MAX_NOTE_CHARS:,} characters")
    _check(key, mode)
    return replace_spans(
        text, detect_phi(text, extra_spans), key=key, patient=patient, mode=mode, source=source
    )


def replace_spans(
    text: str,
    spans: list[PhiSpan],
    *,
    key: str,
    patient: str | None = None,
    mode: str = "surrogate",
    source: str = "",
) -> DeidResult:
    """The replacement half of `deidentify_text`, for spans already found (merged, sorted):
    `deidentify_source` finds a patient's names in all their notes first.

    Raises:
        ValueError: as `deidentify_text`.
    """
    _check(key, mode)
    scope = patient.strip() if patient is not None and patient.strip() else f"note:{source}"
    shift = offset_days(key, scope) if mode == "surrogate" else 0
    if mode == "tag":
        replaced = [PhiSpan(s.start, s.end, s.type, f"[{s.type}]") for s in spans]
    else:
        avoid = frozenset(
            word.lower() for s in spans for word in re.findall(r"[A-Za-z]+", text[s.start : s.end])
        )
        surrogates = Surrogates(key, scope, shift, avoid)
        replaced = [
            PhiSpan(s.start, s.end, s.type, surrogates.replace(s.type, text[s.start : s.end]))
            for s in spans
        ]
    pieces = []
    cursor = 0
    for span in replaced:
        pieces.append(text[cursor : span.start])
        pieces.append(span.replacement)
        cursor = span.end
    pieces.append(text[cursor:])
    return DeidResult("".join(pieces), replaced, shift)


def _check(key: str, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"the de-identification key must have at least {MIN_KEY_CHARS} characters")
