"""Predicting with a text-classify run: labels per output for one note, with entities.

`LoadedTextClassifier` is the run loaded once (the service's `LoadedRun`): it reads a UTF-8
note (size checked before reading), tokenises it with the run's ``tokenizer.json`` exactly
as training did, scores it with the primary encoder, applies the primary model's per-output
temperatures from ``calibration.json`` and adds the rule pipeline's entities with their
assertion context (`medsight.text.pipeline.analyze`, when that package is installed in this
build). `predict_notes` is ``medsight predict`` (a table or ``--json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.table import Table

from medsight.console import console
from medsight.errors import InputError
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import TextLabel, TextResult
from medsight.text.io.text_files import read_text_note
from medsight.text.models.document_classifier import DocumentClassifier, split_logits
from medsight.text.models.subword_tokenizer import TOKENIZER_FILE, encode_texts, load_tokenizer
from medsight.text.tasks.classify_contract import TextClassifyContract, read_contract
from medsight.text.tasks.classify_weights import WEIGHTS_FILE, load_model
from medsight.text.tasks.note_prediction import predict_note_file
from medsight.text.tasks.result_entities import result_entities

CALIBRATION_FILE = "calibration.json"
TASK: Literal["text-classify"] = "text-classify"


def read_temperatures(run_dir: Path, model: str) -> dict[str, float]:
    """The model's per-output temperatures from ``calibration.json`` ({} when absent)."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return {}
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data["temperatures"].get(model, {}).items()}
    except (
        json.JSONDecodeError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ):
        raise InputError(f"{path}: invalid calibration file") from None


class LoadedTextClassifier:
    """A text-classify run loaded once for the service and the CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.contract: TextClassifyContract = read_contract(self.folder)
        self.tokenizer = load_tokenizer(self.folder / TOKENIZER_FILE)
        self.model: DocumentClassifier = load_model(
            self.contract.model_name, self.contract.spec, self.folder / WEIGHTS_FILE
        )
        self.temperatures = read_temperatures(self.folder, self.contract.model_name)

    def is_2d(self) -> bool:
        """True: a note is answered at once, never queued."""
        return True

    def token_ids(self, text: str) -> torch.Tensor:
        """The note's token ids ``(1, L)`` as the run's tokenizer and length cut give them."""
        ids = encode_texts(self.tokenizer, [text], self.contract.spec.max_tokens)[0]
        return torch.from_numpy(ids).unsqueeze(0)

    def probabilities(self, text: str) -> dict[str, np.ndarray]:
        """Per output, the calibrated class probabilities of ``text``."""
        with torch.inference_mode():
            logits = self.model(self.token_ids(text)).float()
        outputs = list(self.contract.outputs)
        sizes = [len(self.contract.outputs[o]) for o in outputs]
        out = {}
        for name, part in zip(outputs, split_logits(logits, sizes), strict=True):
            temperature = self.temperatures.get(name, 1.0)
            out[name] = (part[0] / temperature).softmax(dim=0).double().numpy()
        return out

    def score_text(self, text: str, with_entities: bool = True) -> TextResult:
        """The `TextResult` of one note's text."""
        started = time.perf_counter()
        labels = {}
        for name, probs in self.probabilities(text).items():
            classes = self.contract.outputs[name]
            best = int(np.argmax(probs))
            labels[name] = TextLabel(
                label=classes[best],
                probability=float(probs[best]),
                probabilities={c: float(p) for c, p in zip(classes, probs, strict=True)},
            )
        entities, sections = result_entities(text) if with_entities else ([], [])
        return TextResult(
            task=TASK,
            labels=labels,
            entities=entities,
            sections=sections,
            network=self.contract.model_name,
            seconds=time.perf_counter() - started,
        )

    def predict(self, source: Path, out: Path, heatmap: bool) -> TextResult:
        """Labels of the UTF-8 note ``source``; a copy ``note.txt`` of it goes into ``out``."""
        return predict_note_file(source, out, self.score_text)


def predict_notes(run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
    """Label each note; print a table, or JSON with ``options.as_json``.

    Raises:
        InputError: imaging-only options, a missing run, or an unreadable note.
    """
    loaded = LoadedTextClassifier(run_dir)  # first: a missing run names the command
    if options.out is not None or options.heatmap is not None:
        raise InputError("--out and --heatmap are for imaging runs; use `medsight explain`")
    results = []
    for path in inputs:
        result = loaded.score_text(read_text_note(path).text)
        result.input = str(path)
        results.append(result)
    if options.as_json:
        records = [r.to_json() for r in results]
        print(json.dumps(records[0] if len(records) == 1 else records))
        return
    table = Table(title=f"text-classify predictions of {run_dir} ({loaded.contract.model_name})")
    for column in ("input", "output", "label", "probability"):
        table.add_column(column)
    for r in results:
        for output, label in r.labels.items():
            table.add_row(str(r.input), output, label.label, f"{label.probability:.3f}")
    console.print(table)
