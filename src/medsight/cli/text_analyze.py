"""`medsight text analyze IN -o OUT [--model RUN]`: sections, entities with their assertion
context and (with a trained text-classify run) document labels, per note, as JSONL and as an
HTML page with the entities highlighted."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer

from medsight.console import say
from medsight.errors import InputError

#: the files `analyze` writes into OUT
JSONL_NAME = "analysis.jsonl"
HTML_NAME = "analysis.html"


def analyze(
    source: Path = typer.Argument(
        ...,
        help="Notes: a .txt file, a folder of them, a notes table (.csv/.tsv/.jsonl/.parquet), "
        "FHIR JSON, HL7 v2 (.hl7) or DICOM SR (.dcm).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for analysis.jsonl and analysis.html."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="A trained text-classify run folder: its labels are added to each note.",
        show_default=False,
    ),
) -> None:
    """Analyse notes: sections, sentences, entities (findings, devices, anatomy, medications,
    procedures, sizes) with negation, certainty, temporality and experiencer.

    Writes OUT/analysis.jsonl (one analysed note a line) and OUT/analysis.html (each note with
    its entities highlighted: negated struck through, uncertain dashed). Nothing from a note
    is printed.

    Raises:
        InputError: unreadable or malformed notes (naming the file and row), a --model run
            that is not a text-classify run.
    """
    from medsight.runs.atomic import atomic_path
    from medsight.text.io.read_notes import read_notes
    from medsight.text.pipeline.analyze import default_pipeline
    from medsight.text.render.analyzed_notes_html import analyzed_notes_page

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    classifier = _load_classifier(model) if model is not None else None
    notes = list(read_notes(source))
    pipeline = default_pipeline()
    pairs = []
    for note, analyzed in zip(notes, pipeline.pipe(notes), strict=True):
        if classifier is not None:
            analyzed.labels = _labels_of(classifier, note.text)
        pairs.append((note.text, analyzed))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / JSONL_NAME) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for _, analyzed in pairs:
            handle.write(json.dumps(analyzed.to_json(), ensure_ascii=False) + "\n")
    with atomic_path(out / HTML_NAME) as tmp:
        tmp.write_text(
            analyzed_notes_page(pairs, title=f"Analysed notes: {source.name}"), encoding="utf-8"
        )
    n_entities = sum(len(a.entities) for _, a in pairs)
    n_negated = sum(e.negation == "negated" for _, a in pairs for e in a.entities)
    say(
        f"analysed {len(pairs)} notes: {n_entities} entities ({n_negated} negated)"
        + (f", labels from {model.name}" if model is not None else "")
    )
    say(f"wrote {out / JSONL_NAME} and {out / HTML_NAME}")


def _load_classifier(run: Path) -> Any:
    """The loaded text-classify run (the task registry's ``load``)."""
    from medsight.cli.task_lookup import task_of_run

    if not run.is_dir():
        raise InputError(
            f"{run}: no such run folder (train one with `medsight train DATA --task text-classify`)"
        )
    task = task_of_run(run)
    if task.name != "text-classify":
        raise InputError(f"{run}: --model needs a text-classify run, this is a {task.name} run")
    return task.load(run)


def _labels_of(loaded: Any, text: str) -> dict[str, str]:
    """The run's label per output for one note, through its ``predict`` contract (a UTF-8
    note file in, a `TextResult` out); the temporary copy is removed at once."""
    with tempfile.TemporaryDirectory(prefix="medsight-analyze-") as folder:
        note = Path(folder) / "note.txt"
        note.write_text(text, encoding="utf-8")
        result = loaded.predict(note, Path(folder) / "out", False)
    return {name: label.label for name, label in result.labels.items()}
