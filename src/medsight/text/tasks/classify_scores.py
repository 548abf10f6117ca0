"""Every model of a text-classify run scored on one set of notes: the run's test split, or
an external set (``medsight evaluate RUN --data OTHER``).

The test split comes from ``RUN/predictions.parquet`` (written at training time, so the
numbers are those of the models as trained); an external set is read with the run's outputs
(`classify_data`, outputs missing from it skipped with a note), tokenised with the run's
tokenizer and scored by every encoder in ``RUN/models/`` and the saved TF-IDF baseline. A
label the run's output does not have (a class it never saw) cannot be scored: those notes
are dropped for that output and counted in ``notes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from medsight.errors import InputError
from medsight.text.baselines.tfidf_logistic import TfidfLogistic
from medsight.text.models.subword_tokenizer import TOKENIZER_FILE, encode_texts, load_tokenizer
from medsight.text.tasks.classify_contract import TextClassifyContract
from medsight.text.tasks.classify_data import load_classify_data
from medsight.text.tasks.classify_fit import predict_probabilities
from medsight.text.tasks.classify_run import BASELINE, BASELINE_FILE, PREDICTIONS_FILE
from medsight.text.tasks.classify_weights import MODELS_DIR, load_model


@dataclass
class ScoredNotes:
    """Labels and every model's probabilities on one set of notes (same order throughout)."""

    #: where the notes came from ("test split of RUN" or the external path)
    source: str
    subjects: np.ndarray
    #: output -> class index per note (-1: unlabelled or a class the run lacks)
    y: dict[str, np.ndarray]
    #: model -> output -> ``(notes, k)`` probabilities (uncalibrated)
    probs: dict[str, dict[str, np.ndarray]]
    kinds: dict[str, str]
    #: optional per-note attributes (``sex``, ``age``) for subgroup tables
    groups: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _indices(labels: list[Any], classes: list[str]) -> tuple[np.ndarray, int]:
    lookup = {c: i for i, c in enumerate(classes)}
    y = np.asarray([lookup.get(v, -1) if v is not None else -1 for v in labels], np.int64)
    unknown = sum(1 for v in labels if v is not None and v not in lookup)
    return y, unknown


def test_split_scores(run_dir: Path, contract: TextClassifyContract) -> ScoredNotes:
    """The run's test-split notes, from ``predictions.parquet``.

    Raises:
        InputError: missing (names the command) or unreadable predictions, or no test notes.
    """
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        raise InputError(
            f"{path}: missing; train the run with `medsight train DATA --task text-classify -o RUN`"
        )
    try:
        frame = cast(pl.DataFrame, pl.from_arrow(pq.read_table(path)))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    test = frame.filter(pl.col("split") == "test")
    if test.height == 0:
        raise InputError(f"{path}: no test notes to evaluate")
    models = list(dict.fromkeys(test["model"].to_list()))
    outputs = list(contract.outputs)
    first = test.filter((pl.col("model") == models[0]) & (pl.col("output") == outputs[0]))
    order = first["note_id"].to_list()
    position = {n: i for i, n in enumerate(order)}
    y: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    probs: dict[str, dict[str, np.ndarray]] = {m: {} for m in models}
    for output in outputs:
        part = (
            first
            if output == outputs[0]
            else test.filter((pl.col("model") == models[0]) & (pl.col("output") == output))
        )
        rows = np.asarray([position[n] for n in part["note_id"].to_list()])
        labels: list[Any] = [None] * len(order)
        for r, v in zip(rows, part["label"].to_list(), strict=True):
            labels[r] = v
        y[output], _ = _indices(labels, contract.outputs[output])
    for model in models:
        for output in outputs:
            part = test.filter((pl.col("model") == model) & (pl.col("output") == output))
            matrix = np.zeros((len(order), len(contract.outputs[output])))
            rows = np.asarray([position[n] for n in part["note_id"].to_list()])
            matrix[rows] = np.asarray(part["probabilities"].to_list(), dtype=np.float64)
            probs[model][output] = matrix
        kinds[model] = str(test.filter(pl.col("model") == model)["kind"][0])
    groups: dict[str, list[Any]] = {}
    for key in ("sex", "age", "age_years"):
        column = f"group_{key}"
        if column in first.columns:
            groups["age" if key == "age_years" else key] = first[column].to_list()
    return ScoredNotes(
        source=f"test split of {Path(run_dir).name}",
        subjects=np.asarray(first["subject_id"].to_list(), dtype=object),
        y=y,
        probs=probs,
        kinds=kinds,
        groups=groups,
    )


def external_scores(run_dir: Path, contract: TextClassifyContract, data: Path) -> ScoredNotes:
    """Every model of the run scored on the notes at ``data`` (outputs matched by name).

    Raises:
        InputError: unreadable data, or none of the run's outputs in it.
    """
    external = load_classify_data(data, outputs=list(contract.outputs), require_two_classes=False)
    outputs = [o for o in contract.outputs if o in external.labels]
    if not outputs:
        raise InputError(f"{data}: none of the run's outputs ({', '.join(contract.outputs)})")
    tokenizer = load_tokenizer(Path(run_dir) / TOKENIZER_FILE)
    ids = encode_texts(tokenizer, external.texts, contract.spec.max_tokens)
    everything = np.arange(len(external))
    all_outputs = list(contract.outputs)
    sizes = [len(contract.outputs[o]) for o in all_outputs]
    probs: dict[str, dict[str, np.ndarray]] = {}
    kinds: dict[str, str] = {}
    for name in contract.models:
        model = load_model(name, contract.spec, Path(run_dir) / MODELS_DIR / f"{name}.safetensors")
        per_output = predict_probabilities(model, ids, everything, sizes)
        probs[name] = {o: p for o, p in zip(all_outputs, per_output, strict=True) if o in outputs}
        kinds[name] = "deep"
    baseline_path = Path(run_dir) / BASELINE_FILE
    if baseline_path.is_file():
        try:
            baseline = TfidfLogistic.from_json(json.loads(baseline_path.read_text("utf-8")))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{baseline_path}: not a saved TF-IDF baseline") from None
        probs[BASELINE] = baseline.predict_proba(
            external.texts, {o: contract.outputs[o] for o in outputs}
        )
        kinds[BASELINE] = "baseline"
    y, notes = {}, list(external.notes)
    for output in outputs:
        y[output], unknown = _indices(external.labels[output], contract.outputs[output])
        if unknown:
            notes.append(
                f"{output}: {unknown} note(s) with a label the run never learnt were left out"
            )
    groups: dict[str, list[Any]] = {}
    for key in ("sex", "age", "age_years"):
        if key in external.groups:
            groups["age" if key == "age_years" else key] = external.groups[key]
    return ScoredNotes(
        source=str(data),
        subjects=np.asarray(external.subjects, dtype=object),
        y=y,
        probs=probs,
        kinds=kinds,
        groups=groups,
        notes=notes,
    )
