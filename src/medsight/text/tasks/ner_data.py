"""`text-ner` training data: a JSONL file of notes with character spans, checked line by line.

Each line is a JSON object with ``text`` and a list of spans under the ``--labels`` key
(``entities`` by default, or ``phi``): ``{"start", "end", "type"}`` with ``0 <= start < end
<= len(text)``, not overlapping (a BIO tagger holds one layer of spans). ``subject_id`` (or
``note_id`` without it) groups notes for the patient-level split: 70% train, 15% tuning, 15%
test, seeded. The synthetic corpus (`medsight synth notes`) writes ``radiology.jsonl``
(``entities``) and ``discharge.jsonl`` (``phi`` and ``entities``) in this form.

Errors name the file, the line and the field, never a value from a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.text.io.note import MAX_NOTE_CHARS

LABEL_KEYS = ("entities", "phi")
SPLITS = ("train", "tuning", "test")
SPLIT_SHARES = (0.70, 0.15, 0.15)
#: a data file larger than this is refused before reading (bytes)
MAX_FILE_BYTES = 2_000_000_000

Span = tuple[int, int, str]


@dataclass(frozen=True)
class LabelledNote:
    """One note: its text, gold spans (sorted) and the group the split keeps together."""

    line: int
    text: str
    spans: list[Span]
    group: str


def labels_key(labels: str) -> str:
    """``--labels`` as a span key (``entities`` when empty).

    Raises:
        InputError: not ``entities`` or ``phi``.
    """
    key = labels or "entities"
    if key not in LABEL_KEYS:
        raise InputError(f"--labels {labels}: --task text-ner takes --labels entities or phi")
    return key


def _spans(where: str, raw: object, length: int) -> list[Span]:
    if not isinstance(raw, list):
        raise InputError(f"{where}: not a list of spans")
    spans: list[Span] = []
    for index, span in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(span, dict):
            raise InputError(f"{at}: not an object with start, end, type")
        start, end, kind = span.get("start"), span.get("end"), span.get("type")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
            raise InputError(f"{at}: start and end must be integers")
        if not isinstance(kind, str) or not kind.strip() or " " in kind:
            raise InputError(f"{at}: type must be a non-empty word")
        if not 0 <= start < end <= length:
            raise InputError(f"{at}: span out of range (0 <= start < end <= {length} expected)")
        spans.append((start, end, kind))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise InputError(f"{where}: spans overlap (the tagger takes one layer of spans)")
    return spans


def read_ner_jsonl(path: Path, key: str | None) -> list[LabelledNote]:
    """Every note of ``path`` with its ``key`` spans (none read when ``key`` is None).

    Raises:
        InputError: a missing/oversized file, a line that is not a JSON object, an empty or
            oversized ``text``, a missing ``key``, or a bad span (out of range, overlapping,
            malformed); each names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (text-ner reads a JSONL of notes with spans)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    notes: list[LabelledNote] = []
    with open(path, encoding="utf-8") as lines:
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                notes.append(_note(f"{path.name}: line {number}", number, line, key))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
    if not notes:
        raise InputError(f"{path}: no notes (expected one JSON object per line)")
    return notes


def _note(where: str, number: int, line: str, key: str | None) -> LabelledNote:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise InputError(f"{where}: not valid JSON") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where}: missing field 'text'")
    if not text.strip():
        raise InputError(f"{where}: empty text")
    if len(text) > MAX_NOTE_CHARS:
        raise InputError(f"{where}: text longer than {MAX_NOTE_CHARS} characters")
    spans: list[Span] = []
    if key is not None:
        if key not in record:
            raise InputError(f"{where}: missing field {key!r} (the --labels span list)")
        spans = _spans(f"{where}: {key}", record[key], len(text))
    group = record.get("subject_id", record.get("note_id"))
    return LabelledNote(number, text, spans, f"line {number}" if group is None else str(group))


def split_notes(notes: list[LabelledNote], seed: int) -> dict[str, list[int]]:
    """Note indices per split, patients (groups) kept whole: 70/15/15, seeded.

    With three or more groups, tuning and test get at least one group each.

    Raises:
        InputError: fewer than three groups (no room for train, tuning and test).
    """
    groups = sorted({n.group for n in notes})
    if len(groups) < 3:
        raise InputError(
            f"{len(groups)} patients/notes: text-ner needs at least 3 (train, tuning, test)"
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    n_tuning = max(1, round(SPLIT_SHARES[1] * len(groups)))
    n_test = max(1, round(SPLIT_SHARES[2] * len(groups)))
    n_train = len(groups) - n_tuning - n_test
    where = {}
    for rank, position in enumerate(order):
        split = "train" if rank < n_train else "tuning" if rank < n_train + n_tuning else "test"
        where[groups[position]] = split
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for index, note in enumerate(notes):
        out[where[note.group]].append(index)
    return out
