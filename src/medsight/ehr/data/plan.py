"""The EHR plan: what a risk run does with a MEDS dataset, from one streaming pass over it.

Read from the TRAIN split only (tuning and held-out patients never shape the inputs):

- vocabulary: codes kept by frequency (at least ``min_code_count`` events, at most
  ``max_vocabulary`` codes, most frequent first); other codes share the "unknown" index;
- per-code numeric statistics: mean and standard deviation (exact, running sums) and
  quantile bin edges (from a uniform sample of at most `VALUE_SAMPLE` values per code, a
  bottom-k sketch, so memory does not grow with the cohort);
- history: ``max_events`` from the 95th percentile of the number of events a sample sees
  in the look-back window (capped at `MAX_EVENTS_CAP`, a CPU-friendly length), so most
  samples keep their whole window and a few long ones are cut to their latest events;
- model sizes from the number of training samples, and the batch size for the memory budget.

Without labels (``medsight plan``) the history lengths are events per subject instead.
Every choice is written with its reason in ``notes``; ``plan.json`` is editable and a run
reuses it unless ``--replan``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import medsight
from medsight.ehr.data.history_windows import event_times_us, history_windows, sort_events
from medsight.ehr.io.meds_dataset import MedsDataset
from medsight.ehr.models.spec import ModelSpec
from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic

PLAN_FILE = "plan.json"
#: values per code kept to place quantile bin edges
VALUE_SAMPLE = 20_000
#: the longest history a sample keeps by default (attention and recurrence cost on a CPU).
#: Measured on the synthetic diabetes cohort (3,000 patients, seed 0; p50/p95 of 183/378
#: events in the 3-year look-back): at 256 events 6.4% of the samples whose records span 2+
#: years lose events older than 2 years (0.8% at 512), yet a GRU with 512 events was no
#: better (tuning/held-out AUROC 0.683/0.629 against 0.687/0.653 at 256, seed 0) and 20-40%
#: slower per epoch; what it lacked was a value's trend (see `medsight.ehr.models.embedding`)
MAX_EVENTS_CAP = 256
MIN_EVENTS = 16
DEFAULT_LOOKBACK_DAYS = 3 * 365
DEFAULT_MODELS = ["gru"]


class CodeValues(BaseModel):
    """Numeric statistics of one code's values (train split, in the code's unit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    std: float
    #: inner quantile edges (ascending); value bin = 1 + number of edges below the value
    edges: list[float]
    count: int


class EhrPlan(BaseModel):
    """What ``medsight train --task ehr-risk`` does with a MEDS dataset; ``plan.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    task: Literal["ehr-risk"] = "ehr-risk"
    created_by: str
    #: code of vocabulary index i + 2 (0 padding, 1 unknown or rare)
    vocabulary: list[str]
    min_code_count: Annotated[int, Field(ge=1)]
    max_vocabulary: Annotated[int, Field(ge=1)]
    value_bins: Annotated[int, Field(ge=1)]
    values: dict[str, CodeValues]
    max_events: Annotated[int, Field(ge=1)]
    lookback_days: Annotated[float, Field(gt=0)]
    model: ModelSpec
    batch_size: Annotated[int, Field(ge=1)]
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    #: the sequence models training fits (the first is the default primary)
    models: list[str] = DEFAULT_MODELS
    #: whether the history lengths came from labelled prediction times
    planned_with_labels: bool
    fingerprint: dict[str, float]
    notes: list[str]

    def code_index(self) -> dict[str, int]:
        """code -> vocabulary index (2 ...)."""
        return {code: i + 2 for i, code in enumerate(self.vocabulary)}


def write_ehr_plan(path: Path, plan: EhrPlan) -> Path:
    """Save ``plan`` as indented JSON (atomically)."""
    return write_text_atomic(path, plan.model_dump_json(indent=2) + "\n")


def read_ehr_plan(path: Path) -> EhrPlan:
    """Load a plan a person may have edited.

    Raises:
        InputError: missing, or not a valid EHR plan (names the first offending field).
    """
    if not path.is_file():
        raise InputError(f"{path}: no plan; run `medsight plan DATA --task ehr-risk` first")
    try:
        return EhrPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: invalid EHR plan: {where}: {err['msg']}") from None


class _ValueSketch:
    """Exact mean/std and a uniform bottom-k sample of one code's values."""

    def __init__(self) -> None:
        self.n, self.total, self.squares = 0, 0.0, 0.0
        self.keys = np.zeros(0, np.float64)
        self.values = np.zeros(0, np.float64)

    def add(self, values: np.ndarray, keys: np.ndarray) -> None:
        self.n += len(values)
        self.total += float(values.sum())
        self.squares += float(np.square(values).sum())
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if len(keys) > VALUE_SAMPLE:
            keep = np.argpartition(keys, VALUE_SAMPLE)[:VALUE_SAMPLE]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values

    def summary(self, bins: int) -> CodeValues:
        mean = self.total / self.n
        var = max(self.squares / self.n - mean * mean, 0.0)
        std = math.sqrt(var) if var > 1e-12 else 1.0
        quantiles = np.quantile(self.values, np.linspace(0, 1, bins + 1)[1:-1])
        edges = sorted({float(q) for q in quantiles})
        return CodeValues(mean=mean, std=std, edges=edges, count=self.n)


def _available_memory_gb() -> float:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1024**3
    except (ValueError, OSError, AttributeError):
        return 4.0


def _model_spec(n_train: int, vocab: int, bins: int, notes: list[str]) -> ModelSpec:
    if n_train < 5_000:
        sizes = {"embed_dim": 64, "hidden_dim": 64, "layers": 1}
    elif n_train < 50_000:
        sizes = {"embed_dim": 96, "hidden_dim": 128, "layers": 1}
    else:
        sizes = {"embed_dim": 128, "hidden_dim": 128, "layers": 2}
    notes.append(
        f"Model: embedding {sizes['embed_dim']}, hidden {sizes['hidden_dim']}, "
        f"{sizes['layers']} recurrent layer(s) for {n_train} training samples "
        "(larger cohorts get wider networks)."
    )
    return ModelSpec(vocab_size=vocab + 2, value_bins=bins, **sizes)


def _batch_size(
    spec: ModelSpec, max_events: int, n_train: int, memory_gb: float, notes: list[str]
) -> int:
    budget = (memory_gb if memory_gb > 0 else _available_memory_gb() / 2) * 1024**3
    # activations kept for backward: embeddings, recurrent/feed-forward states, attention maps
    per_sample = (
        4 * max_events * (spec.embed_dim * 8 + spec.hidden_dim * 8 * spec.layers)
        + 4 * spec.heads * spec.transformer_layers * max_events**2 * 3
    )
    # small cohorts: smaller batches, so an epoch still takes enough optimiser steps
    batch = 32 if n_train < 2_000 else 64
    while batch > 8 and batch * per_sample * 4 > budget:
        batch //= 2
    notes.append(
        f"Batch size {batch}: about {batch * per_sample * 4 / 1024**2:.0f} MiB of activations "
        f"at {max_events} events, within {budget / 1024**3:.1f} GiB."
    )
    return batch


def make_ehr_plan(
    dataset: MedsDataset,
    labels: pa.Table | None,
    memory_gb: float = 0.0,
    seed: int = 0,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    value_bins: int = 10,
) -> EhrPlan:
    """Plan a risk run from the train split of ``dataset`` (one shard in memory at a time).

    Args:
        dataset: the MEDS dataset.
        labels: the labels (subject_id, prediction_time, boolean_value), or None to plan
            from the data alone.
        memory_gb: memory a training batch may use (0: half of what is free).
        seed: seeds the value sample.
        lookback_days: how far back a sample's history reaches.
        value_bins: quantile bins per numeric code.

    Raises:
        InputError: the train split has no events.
    """
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    sketches: dict[str, _ValueSketch] = {}
    splits = dataset.splits()
    lengths: list[np.ndarray] = []
    subjects = events = 0
    label_subject = label_time = None
    if labels is not None:
        order = np.lexsort(
            (event_times_us(labels, "prediction_time"), labels.column("subject_id").to_numpy())
        )
        label_subject = labels.column("subject_id").to_numpy()[order]
        label_time = event_times_us(labels, "prediction_time")[order]
        is_train = np.array([splits.get(int(s)) == "train" for s in label_subject], bool)
        label_subject, label_time = label_subject[is_train], label_time[is_train]
    shards = dataset.shard_paths("train") or dataset.shard_paths()
    if not dataset.shard_paths("train"):
        notes.append("The dataset has no train split folder: planned from every shard.")
    for path in shards:
        table = dataset.read_shard(path, columns=["subject_id", "time", "code", "numeric_value"])
        if table.num_rows == 0:
            continue
        table = sort_events(table)
        events += table.num_rows
        subject_id = table.column("subject_id").to_numpy()
        unique, per_subject = np.unique(subject_id, return_counts=True)
        subjects += len(unique)
        for item in table.column("code").value_counts().to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
        with_value = table.filter(pc.is_valid(table.column("numeric_value")))
        if with_value.num_rows:
            encoded = pc.dictionary_encode(with_value.column("code")).combine_chunks()
            codes = encoded.indices.to_numpy()
            names = encoded.dictionary.to_pylist()
            values = with_value.column("numeric_value").to_numpy().astype(np.float64)
            keys = rng.random(len(values))
            order = np.argsort(codes, kind="stable")
            codes, values, keys = codes[order], values[order], keys[order]
            cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(codes)], strict=True):
                sketches.setdefault(names[codes[lo]], _ValueSketch()).add(
                    values[lo:hi], keys[lo:hi]
                )
        if label_subject is not None and label_time is not None:
            mine = np.isin(label_subject, unique)
            windows = history_windows(
                subject_id,
                event_times_us(table),
                label_subject[mine],
                label_time[mine],
                lookback_days,
                10**9,
            )
            lengths.append(np.diff(windows.offsets))
        else:
            lengths.append(per_subject)
    if events == 0:
        raise InputError(f"{dataset.root}: the train split has no events to plan from")

    min_count = 5 if events >= 100_000 else 2
    max_vocab = 20_000
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocabulary = [code for code, n in ranked if n >= min_count][:max_vocab]
    notes.append(
        f"Vocabulary: {len(vocabulary)} of {len(counts)} codes (train split, at least "
        f"{min_count} events each, at most {max_vocab}); the rest share one 'unknown' index."
    )
    kept = set(vocabulary)
    values = {c: s.summary(value_bins) for c, s in sorted(sketches.items()) if c in kept}
    notes.append(
        f"Numeric values: {len(values)} codes standardised by their train mean and SD and "
        f"binned at {value_bins} quantiles (from at most {VALUE_SAMPLE} values each)."
    )

    all_lengths = np.concatenate(lengths) if lengths else np.zeros(1, np.int64)
    all_lengths = all_lengths if len(all_lengths) else np.zeros(1, np.int64)
    p50, p95 = (float(np.percentile(all_lengths, q)) for q in (50, 95))
    max_events = int(min(MAX_EVENTS_CAP, max(MIN_EVENTS, math.ceil(p95 / 16) * 16)))
    what = (
        f"events in the {lookback_days:g}-day look-back before a train prediction time"
        if labels is not None
        else "events per train subject (planned from the data alone, without labels)"
    )
    cut = float((all_lengths > max_events).mean())
    notes.append(
        f"History: the last {max_events} events within {lookback_days:g} days (median "
        f"{p50:.0f}, 95th percentile {p95:.0f} {what}; {cut:.1%} of samples are cut)."
    )
    n_train = int(len(all_lengths)) if labels is not None else subjects
    spec = _model_spec(n_train, len(vocabulary), value_bins, notes)
    batch = _batch_size(spec, max_events, n_train, memory_gb, notes)
    # measured on the synthetic cohort (578 train samples): 3e-3 reached tuning AUROC 0.75
    # where 1e-3 stalled near 0.58 within 30 epochs; larger cohorts take more steps per epoch
    learning_rate = 3e-3 if n_train < 5_000 else 1e-3
    notes.append(f"Learning rate {learning_rate:g} for {n_train} training samples.")
    notes.append(
        f"Models: {', '.join(DEFAULT_MODELS)} (add lstm, transformer, retain in 'models')."
    )
    fingerprint = {
        "train_subjects": float(subjects),
        "train_events": float(events),
        "train_codes": float(len(counts)),
        "train_samples": float(len(all_lengths)) if labels is not None else 0.0,
        "history_p50": p50,
        "history_p95": p95,
    }
    return EhrPlan(
        created_by=f"medsight {medsight.__version__}",
        vocabulary=vocabulary,
        min_code_count=min_count,
        max_vocabulary=max_vocab,
        value_bins=value_bins,
        values=values,
        max_events=max_events,
        lookback_days=lookback_days,
        model=spec,
        batch_size=batch,
        learning_rate=learning_rate,
        planned_with_labels=labels is not None,
        fingerprint=fingerprint,
        notes=notes,
    )
