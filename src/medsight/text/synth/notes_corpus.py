"""`write_notes_corpus`: the whole synthetic corpus as files (what `medsight synth notes` writes).

```
OUT/radiology.jsonl   chest-CT reports with gold entities, findings and the nodule
OUT/discharge.jsonl   discharge summaries with gold PHI spans and entities
OUT/feedback.jsonl    feedback comments with sentiment and topic
OUT/notes.csv         all of them as one notes table: note_id,subject_id,time,kind,text
OUT/assert.csv        one row per finding mention: its sentence, the mention and its gold
                      negation, certainty, temporality, experiencer (`medsight text assert`)
OUT/manifest.json     seed, counts, generator version
```
The same seed and inputs give byte-identical files. The folder is replaced only once the new
corpus is whole.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medsight.errors import InputError
from medsight.runs.atomic import atomic_dir
from medsight.text.synth.chest_ct_reports import ChestCtCase, chest_ct_reports, invented_cases
from medsight.text.synth.discharge_summaries import (
    DischargePatient,
    discharge_summaries,
    invented_patients,
)
from medsight.text.synth.document_builder import GeneratedNote
from medsight.text.synth.feedback_comments import feedback_comments

#: bumped whenever the same seed would give different text
GENERATOR_VERSION = "2"
NOTES_COLUMNS = ("note_id", "subject_id", "time", "kind", "text")
ASSERT_COLUMNS = ("text", "concept", "negation", "certainty", "temporality", "experiencer")


def write_notes_corpus(
    out: Path,
    seed: int,
    *,
    cases: Sequence[Mapping[str, Any]] | None = None,
    patients: Sequence[Mapping[str, Any]] | None = None,
    reports: int = 300,
    discharge: int = 300,
    feedback: int = 300,
) -> dict[str, Any]:
    """Generate the corpus into ``out`` (replaced when complete); returns the manifest.

    Args:
        out: the output folder.
        seed: random seed; the same seed and inputs give the same bytes.
        cases: chest-CT cases as dicts (``case_id, patient_id, label, size_mm, lobe,
            character[, study_date, age, sex]``): one report each. None: ``reports``
            invented cases.
        patients: discharge-summary patients as dicts (``subject_id, sex, age``): the first
            ``discharge`` of them get a summary. None: invented ones.
        reports: number of reports when ``cases`` is None.
        discharge: number of discharge summaries.
        feedback: number of feedback comments.

    Raises:
        InputError: a case or patient dict is malformed (naming which one and the field).
    """
    if min(reports, discharge, feedback) < 0:
        raise InputError("notes corpus: counts must be >= 0")
    rng = random.Random(f"{seed}:cohorts")
    try:
        case_rows = (
            [ChestCtCase.from_dict(c) for c in cases]
            if cases is not None
            else invented_cases(reports, rng)
        )
        people = (
            [DischargePatient.from_dict(p) for p in patients[:discharge]]
            if patients is not None
            else invented_patients(discharge, rng)
        )
    except (ValueError, TypeError) as error:
        raise InputError(f"notes corpus: {error}") from None
    radiology = list(chest_ct_reports(case_rows, seed))
    summaries = list(discharge_summaries(people, seed))
    comments = list(feedback_comments(feedback, seed))
    manifest: dict[str, Any] = {
        "generator": "medsight synth notes",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "counts": {
            "radiology": len(radiology),
            "discharge": len(summaries),
            "feedback": len(comments),
        },
        "cases": "chest-CT cohort" if cases is not None else "invented",
        "patients": "EHR cohort" if patients is not None else "invented",
    }
    with atomic_dir(out) as tmp:
        for name, notes in (
            ("radiology.jsonl", radiology),
            ("discharge.jsonl", summaries),
            ("feedback.jsonl", comments),
        ):
            _write_jsonl(tmp / name, (n.record for n in notes))
        all_notes = [n.record for n in (*radiology, *summaries, *comments)]
        (tmp / "notes.csv").write_text(
            _csv(NOTES_COLUMNS, ([r[c] for c in NOTES_COLUMNS] for r in all_notes)),
            encoding="utf-8",
        )
        rows = list(assertion_rows([*radiology, *summaries]))
        (tmp / "assert.csv").write_text(_csv(ASSERT_COLUMNS, rows), encoding="utf-8")
        manifest["counts"]["assert"] = len(rows)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def assertion_rows(notes: Iterable[GeneratedNote]) -> Iterable[list[str]]:
    """One row per finding mention: (sentence, mention text, its four gold values).

    A mention whose text occurs more than once in its sentence is left out, since the row
    could not say which occurrence it means; a row that repeats an earlier one is left out.
    """
    seen: set[tuple[str, ...]] = set()
    for note in notes:
        text = note.record["text"]
        for entity in note.record["entities"]:
            if entity["type"] != "finding":
                continue
            span = next(
                ((s, e) for s, e in note.sentences if s <= entity["start"] and entity["end"] <= e),
                None,
            )
            if span is None:
                continue
            sentence = text[span[0] : span[1]]
            concept = text[entity["start"] : entity["end"]]
            if sentence.count(concept) != 1:
                continue
            row = (
                sentence,
                concept,
                entity["negation"],
                entity["certainty"],
                entity["temporality"],
                entity["experiencer"],
            )
            if row not in seen:
                seen.add(row)
                yield list(row)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()
