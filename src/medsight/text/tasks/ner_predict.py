"""Predicting with a tagger run: a note's text in, its entities (or PHI spans) out.

`LoadedTagger` is the run loaded once (the service's `LoadedRun`): it reads a UTF-8 ``.txt``
note, tags it, and, for ``entities`` runs, asks the rule pipeline for each span's assertion
context and section (`TextPipeline.context_of`) when the pipeline is in the build. PHI spans
carry no ``text``: a result must not repeat the identifiers it found. `predict_ner` is
``medsight predict`` (a table or ``--json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.table import Table

from medsight.console import console
from medsight.errors import InputError
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import TextEntity, TextResult
from medsight.text.io.text_files import read_text_note
from medsight.text.tasks.ner_contract import TASK, read_contract
from medsight.text.tasks.ner_weights import load_tagger
from medsight.text.tasks.note_prediction import predict_note_file
from medsight.text.tasks.result_entities import result_entities

Span = tuple[int, int, str]


class LoadedTagger:
    """A tagger run loaded once for the service and the CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.contract = read_contract(self.folder)
        self.tagger = load_tagger(self.folder)

    def is_2d(self) -> bool:
        """True: a note is answered at once, never queued."""
        return True

    def tag_text(self, text: str) -> TextResult:
        """The `TextResult` of one note's text."""
        began = time.perf_counter()
        spans = self.tagger.spans(text)
        if self.contract.labels == "entities":
            entities, sections = result_entities(text, spans)
        else:
            entities = [TextEntity(start=s, end=e, type=t) for s, e, t in spans]
            sections = []
        return TextResult(
            task=TASK,
            entities=entities,
            sections=sections,
            network=self.contract.model_name,
            seconds=time.perf_counter() - began,
        )

    def predict(self, source: Path, out: Path, heatmap: bool) -> TextResult:
        """Tag the note in ``source``; write the scored text to ``out/note.txt``."""
        return predict_note_file(source, out, self.tag_text)


def predict_ner(run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
    """Tag each note; print a table, or JSON with ``--json``; with ``--out``, copy the notes.

    Raises:
        InputError: a missing run, ``--heatmap`` (use `medsight explain`), or a bad note.
    """
    loaded = LoadedTagger(run_dir)  # first: a missing run names the command that makes it
    if options.heatmap is not None:
        raise InputError("--heatmap is for imaging runs; use `medsight explain RUN NOTE -o OUT`")
    results = []
    for index, path in enumerate(inputs):
        if options.out is not None:
            folder = Path(options.out) / f"{index:04d}_{Path(path).stem}"
            result = loaded.predict(path, folder, False)
        else:
            result = loaded.tag_text(read_text_note(path).text)
        result.input = str(path)
        results.append(result)
    if options.as_json:
        records = [r.to_json() for r in results]
        print(json.dumps(records[0] if len(records) == 1 else records))
        return
    kind = loaded.contract.labels
    table = Table(title=f"{kind} found by {run_dir} ({loaded.contract.model_name})")
    # PHI runs show where, never what: the table must not repeat identifiers
    columns = ["input", "start", "end", "type"] + (
        ["text", "negation"] if kind == "entities" else []
    )
    for column in columns:
        table.add_column(column)
    for r in results:
        for e in r.entities:
            cells = [str(r.input), str(e.start), str(e.end), e.type]
            if kind == "entities":
                cells += [e.text or "", e.negation or ""]
            table.add_row(*cells)
    console.print(table)
