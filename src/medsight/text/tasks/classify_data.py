"""The notes a text-classify run trains or is evaluated on: texts, patients, labels per output.

DATA is one of:

- a notes table (``.csv``, ``.jsonl``, ``.parquet``) with ``text``, ``subject_id`` (else
  ``note_id``: each note its own patient) and label columns. In JSONL, a ``findings`` object
  (the synthetic radiology reports' ``{"pleural_effusion": "present", ...}``) becomes one
  ``finding:<name>`` column per finding, so the synthetic corpus's ``radiology.jsonl`` and
  ``feedback.jsonl`` are read as they are written;
- a folder in the radlabels layout: ``reports/*.txt`` + ``labels.json``
  (``{report_id: {finding: "definitely present" | "definitely absent" | "uncertain"}}``),
  labels mapped to present / absent / uncertain, a finding without an entry "not mentioned";
  the report id is the patient.

``--labels COL[,COL]`` names the outputs; by default ``sentiment`` when there is such a
column, else every ``finding:*`` column with at least two classes of at least
`MIN_CLASS_NOTES` notes each (the others are listed as skipped). Patients are split
70/15/15 into train/tuning/test by a seeded permutation of their ids: no patient is in two
splits. Tables are read by the modality's reader (`medsight.text.io.notes_table`), which keeps
the label columns beside each `Note`.

Messages name the file, row and column, never a value from a note (notes are PHI).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsight.errors import InputError
from medsight.text.io.decode import decode_text
from medsight.text.io.note import MAX_NOTE_CHARS, check_note_text
from medsight.text.io.notes_table import TABLE_SUFFIXES, read_notes_table

SPLITS = ("train", "tuning", "test")
FINDING_PREFIX = "finding:"
#: radlabels' wording -> the report labels every text component uses
RADLABELS_VALUES = {
    "definitely present": "present",
    "definitely absent": "absent",
    "uncertain": "uncertain",
}
NOT_MENTIONED = "not mentioned"
REPORT_LABELS = ("present", "absent", "uncertain", NOT_MENTIONED)
#: a default ``finding:*`` output needs two classes with at least this many notes each
MIN_CLASS_NOTES = 5
#: columns kept for subgroup tables when present
GROUP_COLUMNS = ("sex", "age", "age_years", "kind")


@dataclass
class ClassifyData:
    """Notes with their patients, split and labels (see the module docstring)."""

    source: Path
    note_ids: list[str]
    subjects: list[str]
    texts: list[str]
    #: output -> one label per note (None: this note is unlabelled for the output)
    labels: dict[str, list[str | None]]
    #: output -> its classes in head order
    classes: dict[str, list[str]]
    #: one of `SPLITS` per note
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    #: optional per-note attributes for subgroup tables (sex, age_years, kind)
    groups: dict[str, list[Any]] = field(default_factory=dict)
    #: what was skipped or assumed, for the run's log
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def indices(self, split: str) -> np.ndarray:
        """Positions of the notes in ``split``."""
        return np.flatnonzero(self.split == split)

    def label_indices(self, output: str) -> np.ndarray:
        """Class index of every note for ``output`` (-100 where unlabelled: ignored)."""
        lookup = {c: i for i, c in enumerate(self.classes[output])}
        return np.asarray(
            [lookup.get(v, -100) if v is not None else -100 for v in self.labels[output]],
            dtype=np.int64,
        )


def _label_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: text is missing or not a string")
    if not value.strip():
        raise InputError(f"{where}: empty text")
    if len(value) > MAX_NOTE_CHARS:
        raise InputError(f"{where}: text longer than {MAX_NOTE_CHARS:,} characters")
    return value


def _rows_from_table(path: Path) -> list[dict[str, Any]]:
    table = read_notes_table(path, required=("text",))
    rows = []
    for note, extra in zip(table.notes, table.extras, strict=True):
        row: dict[str, Any] = {
            "note_id": note.note_id,
            "subject_id": note.subject_id,
            "text": note.text,
            "kind": note.kind,
        }
        for key, value in extra.items():
            if key == "findings" and isinstance(value, dict):
                for name, label in value.items():
                    row[f"{FINDING_PREFIX}{name}"] = label
            else:
                row[key] = value
        rows.append(row)
    return rows


def _rows_from_radlabels(folder: Path) -> list[dict[str, Any]]:
    labels_path = folder / "labels.json"
    try:
        labels = json.loads(labels_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{labels_path}: not a readable JSON object") from None
    if not isinstance(labels, dict):
        raise InputError(f"{labels_path}: expected {{report_id: {{finding: label}}}}")
    findings = sorted({f for entry in labels.values() if isinstance(entry, dict) for f in entry})
    rows = []
    for report in sorted((folder / "reports").glob("*.txt")):
        if report.stat().st_size > MAX_NOTE_CHARS * 4:
            raise InputError(f"{report}: larger than {MAX_NOTE_CHARS * 4:,} bytes")
        text = check_note_text(decode_text(report.read_bytes(), str(report)), str(report))
        entry = labels.get(report.stem) or {}
        row: dict[str, Any] = {"note_id": report.stem, "subject_id": report.stem, "text": text}
        for name in findings:
            value = entry.get(name)
            if value is not None and value not in RADLABELS_VALUES:
                raise InputError(f"{labels_path}: {report.stem}: {name}: unknown label")
            row[f"{FINDING_PREFIX}{name}"] = RADLABELS_VALUES[value] if value else NOT_MENTIONED
        rows.append(row)
    if not rows:
        raise InputError(f"{folder / 'reports'}: no .txt reports")
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of DATA as dicts (see the module docstring for the layouts).

    Raises:
        InputError: a missing, oversized, unreadable or empty source.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "labels.json").is_file() and (path / "reports").is_dir():
            return _rows_from_radlabels(path)
        raise InputError(
            f"{path}: a folder must hold reports/*.txt and labels.json (radlabels layout); "
            "for the synthetic corpus name its radiology.jsonl or feedback.jsonl"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"{path}: expected a notes table ({', '.join(TABLE_SUFFIXES)}) or a folder"
        )
    return _rows_from_table(path)


def default_outputs(rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[str], list[str]]:
    """``sentiment``, else the ``finding:*`` columns with two well-populated classes.

    Returns:
        ``(outputs, notes)``: the chosen outputs and one line per skipped finding.
    """
    if "sentiment" in columns:
        return ["sentiment"], []
    chosen, skipped = [], []
    for column in columns:
        if not column.startswith(FINDING_PREFIX):
            continue
        counts: dict[str, int] = {}
        for row in rows:
            value = _label_text(row.get(column))
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
        if sum(c >= MIN_CLASS_NOTES for c in counts.values()) >= 2:
            chosen.append(column)
        else:
            skipped.append(column[len(FINDING_PREFIX) :])
    notes = []
    if skipped:
        notes.append(
            f"{len(skipped)} finding(s) skipped: fewer than two labels with {MIN_CLASS_NOTES}+ "
            f"notes each ({', '.join(skipped[:8])}{', ...' if len(skipped) > 8 else ''})"
        )
    return chosen, notes


def _class_order(values: set[str]) -> list[str]:
    if values <= set(REPORT_LABELS):
        return [v for v in REPORT_LABELS if v in values]
    return sorted(values)


def patient_split(subjects: list[str], seed: int) -> np.ndarray:
    """70/15/15 train/tuning/test by patient: a seeded permutation of the sorted ids.

    With three or more patients each split gets at least one.
    """
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)
    n_test = max(1, round(0.15 * n)) if n >= 3 else 0
    n_tuning = max(1, round(0.15 * n)) if n >= 3 else 0
    assigned = {}
    for rank, position in enumerate(order):
        split = "test" if rank < n_test else "tuning" if rank < n_test + n_tuning else "train"
        assigned[unique[position]] = split
    return np.asarray([assigned[s] for s in subjects], dtype=object)


def load_classify_data(
    path: Path,
    labels: str = "",
    seed: int = 0,
    outputs: list[str] | None = None,
    require_two_classes: bool = True,
) -> ClassifyData:
    """Read DATA, choose its outputs, check it and split it by patient.

    Args:
        path: the notes table or radlabels folder.
        labels: ``--labels`` (comma list of columns); empty: the default outputs.
        seed: the split's seed.
        outputs: take exactly these outputs when present (external evaluation: a run's
            outputs); missing ones are listed in ``notes``, not an error.
        require_two_classes: refuse an output with fewer than two classes (training).

    Raises:
        InputError: unreadable data, empty text, a missing label column, an output with one
            class, or no output at all.
    """
    path = Path(path)
    rows = read_rows(path)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if "text" not in columns:
        raise InputError(f"{path}: no 'text' column")
    notes: list[str] = []
    if outputs is not None:
        chosen = [o for o in outputs if o in columns]
        missing = [o for o in outputs if o not in columns]
        if missing:
            notes.append(f"outputs not in {path.name}, skipped: {', '.join(missing)}")
    elif labels.strip():
        chosen = [c.strip() for c in labels.split(",") if c.strip()]
        for column in chosen:
            if column not in columns:
                known = ", ".join(c for c in columns if c not in ("text",))
                raise InputError(f"{path}: --labels {column}: no such column (columns: {known})")
        if len(set(chosen)) != len(chosen):
            raise InputError(f"--labels {labels}: a column is named twice")
    else:
        chosen, notes = default_outputs(rows, columns)
    if not chosen:
        raise InputError(
            f"{path}: no output to classify; name label columns with --labels COL[,COL]"
        )
    texts, subjects, note_ids = [], [], []
    for number, row in enumerate(rows, start=1):
        where = f"{path.name}: row {number}"
        texts.append(_check_text(row.get("text"), where))
        note_id = _label_text(row.get("note_id")) or str(number)
        note_ids.append(note_id)
        subjects.append(_label_text(row.get("subject_id")) or note_id)
    if "subject_id" not in columns:
        notes.append("no subject_id column: each note is its own patient in the split")
    values = {o: [_label_text(row.get(o)) for row in rows] for o in chosen}
    classes = {}
    for output, labelled in values.items():
        seen = {v for v in labelled if v is not None}
        if require_two_classes and len(seen) < 2:
            raise InputError(
                f"{path}: label column {output!r} has {len(seen)} class(es); a classifier "
                "needs at least two"
            )
        classes[output] = _class_order(seen)
    groups = {
        column: [row.get(column) for row in rows] for column in GROUP_COLUMNS if column in columns
    }
    return ClassifyData(
        source=path,
        note_ids=note_ids,
        subjects=subjects,
        texts=texts,
        labels=values,
        classes=classes,
        split=patient_split(subjects, seed),
        groups=groups,
        notes=notes,
    )
