"""De-identify a note source into a folder: what `medsight text deid IN OUT` writes.

IN is a ``.txt`` file, a folder of them, a notes table (CSV/TSV/JSONL/Parquet) or any other
source `read_notes` takes (FHIR, HL7 v2, DICOM SR: each note becomes ``<note_id>.txt``).
OUT receives the de-identified text under the same file names (a table: the same format,
``text`` de-identified, ``subject_id`` pseudonymised, ``time`` shifted by the patient's date
offset, every other column kept as it stands), ``spans.jsonl`` (per note its ``note_id`` and
the ``start, end, type`` of every masked span in the INPUT's offsets, never a string of the
note) and ``summary.json`` (counts only). OUT is built beside itself and renamed into place
when whole, so a failed run leaves no partial output.

Sources that say whose notes they are (tables, FHIR, HL7) take two passes: first every
note's spans, then each note's spans completed with the words of every name found in ANY note
of the same patient ("his wife Odile" in one note masks "Odile drove him" in the next). A
folder of ``.txt`` files names no patient, so each file stands alone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from medsight.errors import InputError
from medsight.patient_date_offset import offset_days
from medsight.runs.atomic import atomic_dir
from medsight.text.deid.deidentify import DeidResult, replace_spans
from medsight.text.deid.detect_phi import detect_phi
from medsight.text.deid.name_rules import find_name_words, name_words
from medsight.text.deid.phi_span import PhiSpan
from medsight.text.deid.span_merge import merge_spans
from medsight.text.io.decode import decode_text
from medsight.text.io.note import Note
from medsight.text.io.notes_table import (
    NOTE_COLUMNS,
    TABLE_SUFFIXES,
    NotesTable,
    read_notes_table,
)
from medsight.text.io.read_notes import read_notes
from medsight.text.io.text_files import read_text_note, text_files

SPANS_NAME = "spans.jsonl"
SUMMARY_NAME = "summary.json"

#: a trained tagger's PHI spans of a text (``medsight text deid --model``)
ExtraSpans = Callable[[str], list[tuple[int, int, str]]]


@dataclass
class DeidSummary:
    """What a run did, in counts (PHI-free: safe to print and to write beside the output)."""

    source_kind: str
    mode: str
    notes: int = 0
    per_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    model: str | None = None

    @property
    def spans(self) -> int:
        """Spans masked over all notes."""
        return sum(self.per_type.values())

    def as_json(self) -> dict[str, Any]:
        """The ``summary.json`` record."""
        return {
            "input": self.source_kind,
            "mode": self.mode,
            "notes": self.notes,
            "spans": self.spans,
            "per_type": dict(sorted(self.per_type.items())),
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "notes_per_second": round(self.notes / self.seconds, 1) if self.seconds else None,
        }


def deidentify_source(
    source: Path,
    out: Path,
    *,
    key: str,
    mode: str = "surrogate",
    subject_id_of: Callable[[str], str | int],
    extra_spans_of: ExtraSpans | None = None,
    model: str | None = None,
    on_note: Callable[[int], None] | None = None,
) -> DeidSummary:
    """De-identify every note of ``source`` into the folder ``out`` (replaced if it exists).

    Args:
        source: a ``.txt`` file, a folder of them, a notes table or another `read_notes` source.
        out: the output folder; must not lie inside ``source`` nor contain it.
        key: the de-identification key.
        mode: ``surrogate`` or ``tag``.
        subject_id_of: the pseudonymous subject id a table's ``subject_id`` becomes (the CLI
            passes the EHR de-identification's, so notes join the de-identified records).
        extra_spans_of: a trained tagger's spans, added to the rules' for every note.
        model: the tagger's run, for the summary.
        on_note: called with the count of notes done, for a progress bar.

    Raises:
        InputError: ``out`` inside ``source`` (or the reverse), ``out`` an existing file or a
            non-empty folder that is not an earlier output, and every reader's errors.
    """
    source, out = Path(source), Path(out)
    _check_paths(source, out)
    started = time.perf_counter()
    summary = DeidSummary(_kind_of(source), mode, model=model)

    def spans_of(note: Note) -> list[PhiSpan]:
        extra = extra_spans_of(note.text) if extra_spans_of is not None else []
        return _guarded(note, lambda: detect_phi(note.text, extra))

    def finish(note: Note, spans: list[PhiSpan]) -> DeidResult:
        result = _guarded(
            note,
            lambda: replace_spans(
                note.text, spans, key=key, patient=note.subject_id, mode=mode, source=note.note_id
            ),
        )
        summary.notes += 1
        for phi_type, count in result.counts().items():
            summary.per_type[phi_type] = summary.per_type.get(phi_type, 0) + count
        if on_note is not None:
            on_note(summary.notes)
        return result

    with atomic_dir(out) as tmp:
        with (tmp / SPANS_NAME).open("w", encoding="utf-8") as spans_file:

            def record(note: Note, result: DeidResult) -> None:
                row = {"note_id": note.note_id, "spans": [s.as_record() for s in result.spans]}
                spans_file.write(json.dumps(row) + "\n")

            if summary.source_kind in ("file", "folder"):
                used: set[str] = set()
                for name, note in _text_notes(source):
                    result = finish(note, spans_of(note))
                    record(note, result)
                    (tmp / _unique(name, used)).write_text(result.text, encoding="utf-8")
            else:
                table = read_notes_table(source) if summary.source_kind == "table" else None
                notes = table.notes if table is not None else list(read_notes(source))
                results = []
                for note, spans in zip(notes, _with_patient_names(notes, spans_of), strict=True):
                    results.append(finish(note, spans))
                    record(note, results[-1])
                if table is not None:
                    _write_table(source, tmp, key, table, results, subject_id_of)
                else:
                    used = set()
                    for note, result in zip(notes, results, strict=True):
                        name = _unique(f"{note.note_id}.txt", used)
                        (tmp / name).write_text(result.text, encoding="utf-8")
        summary.seconds = time.perf_counter() - started
        (tmp / SUMMARY_NAME).write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    return summary


def _with_patient_names(
    notes: list[Note], spans_of: Callable[[Note], list[PhiSpan]]
) -> list[list[PhiSpan]]:
    """Each note's spans, plus every capitalised word of a name found in ANY note of the same
    patient (a wife named with "his wife" in one note and alone in the next)."""
    found = [spans_of(note) for note in notes]
    names: dict[str, set[str]] = {}
    for note, spans in zip(notes, found, strict=True):
        if note.subject_id:
            words = name_words(note.text, [(s.start, s.end, s.type) for s in spans])
            names.setdefault(note.subject_id, set()).update(words)
    out = []
    for note, spans in zip(notes, found, strict=True):
        more = find_name_words(note.text, names.get(note.subject_id or "", set()))
        if more:
            spans = merge_spans([(s.start, s.end, s.type) for s in spans] + more)
        out.append(spans)
    return out


T = TypeVar("T")


def _guarded(note: Note, work: Callable[[], T]) -> T:
    """Run ``work``; a failure other than bad input is reported by where, never by content."""
    try:
        return work()
    except InputError:
        raise
    except Exception as exc:
        raise RuntimeError(
            f"{note.source or note.note_id}: de-identification failed ({type(exc).__name__})"
        ) from None


def _check_paths(source: Path, out: Path) -> None:
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    src, dst = source.resolve(), out.resolve()
    if dst == src or src in dst.parents:
        raise InputError(f"{out}: OUT lies inside IN; choose a folder outside it")
    if dst in src.parents:
        raise InputError(f"{out}: OUT contains IN (it would be replaced); choose another folder")
    if out.is_file():
        raise InputError(f"{out}: is a file; OUT must be a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_NAME).is_file():
        raise InputError(
            f"{out}: exists and is not an earlier `medsight text deid` output; "
            "choose another folder"
        )


def _kind_of(source: Path) -> str:
    if source.is_dir():
        return "folder"
    suffix = source.suffix.lower()
    if suffix == ".txt":
        return "file"
    return "table" if suffix in TABLE_SUFFIXES else "messages"


def _text_notes(source: Path) -> Iterator[tuple[str, Note]]:
    """(output file name, note) for a ``.txt`` file or a folder of them, one at a time."""
    if source.is_dir():
        for path in text_files(source):
            yield path.name, read_text_note(path)
    else:
        yield source.name, read_text_note(source)


def _unique(name: str, used: set[str]) -> str:
    """A safe file name (no folders, no odd characters), unique within ``used``."""
    stem, dot, suffix = name.rpartition(".")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem or suffix).strip("._") or "note"
    candidate = f"{safe}.{suffix}" if dot else safe
    number = 1
    while candidate.lower() in used:
        number += 1
        candidate = f"{safe}-{number}.{suffix}" if dot else f"{safe}-{number}"
    used.add(candidate.lower())
    return candidate


def _write_table(
    source: Path,
    out: Path,
    key: str,
    table: NotesTable,
    results: list[DeidResult],
    subject_id_of: Callable[[str], str | int],
) -> None:
    """The table again, in its format: text de-identified, subject_id pseudonymised, time
    shifted by the patient's offset, the other columns as they were."""
    rows = []
    for note, extras, result in zip(table.notes, table.extras, results, strict=True):
        scope = note.subject_id.strip() if note.subject_id else f"note:{note.note_id}"
        row: dict[str, Any] = {
            "note_id": note.note_id,
            "subject_id": subject_id_of(note.subject_id) if note.subject_id else None,
            "time": _shifted(note.time, offset_days(key, scope)),
            "text": result.text,
        }
        if note.kind is not None:
            row["kind"] = note.kind
        row.update(extras)
        rows.append(row)
    target = out / source.name
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), target)
    elif suffix in (".jsonl", ".ndjson"):
        with target.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    else:
        _write_csv(source, target, rows, "\t" if suffix == ".tsv" else ",")


def _shifted(when: dt.datetime | None, days: int) -> str | None:
    return None if when is None else (when + dt.timedelta(days=days)).isoformat()


def _write_csv(source: Path, target: Path, rows: list[dict[str, Any]], delimiter: str) -> None:
    """Write ``rows`` with the input's column order (extra columns last if any are new)."""
    header = _csv_header(source, delimiter)
    columns = list(dict.fromkeys([*header, *(k for row in rows for k in row)]))
    columns = [c for c in columns if c in NOTE_COLUMNS or any(c in row for row in rows)]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def _csv_header(source: Path, delimiter: str) -> list[str]:
    text = decode_text(source.read_bytes(), str(source))
    first: Iterable[list[str]] = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [h.strip() for h in next(iter(first), [])]
