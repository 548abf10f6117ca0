"""From MEDS events and labels to `EncodedSamples`, one shard at a time.

Each labelled prediction time becomes a sample whose events are chosen by
`history_windows` (static rows, then the last ``plan.max_events`` events with
``time <= prediction_time`` inside ``plan.lookback_days``): nothing after the prediction
time reaches a sample, whatever the shard holds. Codes become vocabulary indices, values
per-code standardised values and quantile bins (the plan's train statistics), times hours
before the prediction and hours since the previous event. Age is taken from ``MEDS_BIRTH``
(at or before the prediction time), sex from ``SEX//F`` / ``SEX//M`` rows (static, or at or
before the prediction time); the split is the subject's (``metadata/subject_splits.parquet``).

Memory: one shard's events plus its encoded samples at a time. With ``out`` the encoded
shards go to disk and are assembled there into memory-mapped arrays (`EncodedSamples`
folder), so a cohort ten times larger needs ten times the disk, not the RAM.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.data.encoded_samples import SEX_CODES, EncodedSamples
from medsight.ehr.data.history_windows import (
    NO_TIME,
    US_PER_DAY,
    US_PER_HOUR,
    event_times_us,
    history_windows,
    sort_events,
)
from medsight.ehr.data.plan import EhrPlan
from medsight.ehr.io.meds_dataset import BIRTH, MedsDataset
from medsight.errors import InputError

EVENT_COLUMNS = ["subject_id", "time", "code", "numeric_value"]
#: standardised values are clipped to this many SDs (an extreme value is still "very high")
VALUE_CLIP = 5.0
SEX_ROWS = {f"SEX//{k}": v for k, v in SEX_CODES.items() if k != "unknown"}
UNKNOWN_CODE = 1


class CodeEncoder:
    """The plan's vocabulary and per-code value statistics as lookup arrays."""

    def __init__(self, plan: EhrPlan) -> None:
        self.index = plan.code_index()
        size = len(plan.vocabulary) + 2
        self.bins = plan.value_bins
        self.mean = np.zeros(size, np.float64)
        self.std = np.ones(size, np.float64)
        self.has_stats = np.zeros(size, bool)
        self.edges = np.full((size, max(plan.value_bins - 1, 1)), np.inf, np.float64)
        for code, stats in plan.values.items():
            i = self.index.get(code)
            if i is None:
                continue
            self.mean[i], self.std[i], self.has_stats[i] = stats.mean, stats.std, True
            self.edges[i, : len(stats.edges)] = stats.edges

    def codes(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Vocabulary index of every code (`UNKNOWN_CODE` when not in the vocabulary)."""
        encoded = pc.dictionary_encode(column)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        lookup = np.array(
            [self.index.get(c, UNKNOWN_CODE) for c in encoded.dictionary.to_pylist()] or [0],
            np.int32,
        )
        return lookup[encoded.indices.to_numpy(zero_copy_only=False)]

    def values(self, code: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised values (0 when none) and value bins (0 none, bins + 1 unbinned)."""
        present = np.isfinite(raw)
        standard = np.zeros(len(raw), np.float32)
        bins = np.zeros(len(raw), np.int16)
        known = present & self.has_stats[code]
        c, v = code[known], raw[known].astype(np.float64)
        standard[known] = np.clip((v - self.mean[c]) / self.std[c], -VALUE_CLIP, VALUE_CLIP)
        bins[known] = 1 + (v[:, None] > self.edges[c]).sum(axis=1)
        bins[present & ~self.has_stats[code]] = self.bins + 1
        return standard, bins


@dataclass(frozen=True)
class EncodedTable:
    """A table's samples, and which rows of its sorted events each sample saw."""

    samples: EncodedSamples
    #: the events, sorted by subject and time (what ``rows`` index)
    events: pa.Table
    #: row numbers into ``events`` of every encoded event, in `EncodedSamples` order
    rows: np.ndarray


def _static_facts(
    events: pa.Table, time_us: np.ndarray, subject: np.ndarray, sample_time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sex and age of every sample, from rows at or before its prediction time."""
    codes = events.column("code")
    wanted = pc.is_in(codes, value_set=pa.array([BIRTH, *SEX_ROWS]))
    rows = np.flatnonzero(wanted.to_numpy(zero_copy_only=False))
    facts: dict[int, list[tuple[int, str]]] = {}
    ids = events.column("subject_id").to_numpy()
    names = codes.take(pa.array(rows)).to_pylist() if len(rows) else []
    for r, name in zip(rows, names, strict=True):
        facts.setdefault(int(ids[r]), []).append((int(time_us[r]), name))
    sex = np.zeros(len(subject), np.int8)
    age = np.full(len(subject), np.nan, np.float32)
    for i, (s, t) in enumerate(zip(subject, sample_time, strict=True)):
        for when, name in facts.get(int(s), ()):
            if name == BIRTH:
                if when != NO_TIME and when <= t:
                    age[i] = (t - when) / (365.25 * US_PER_DAY)
            elif when <= t:
                sex[i] = SEX_ROWS[name]
    return sex, age


def encode_table(
    events: pa.Table,
    samples: pa.Table,
    plan: EhrPlan,
    splits: Mapping[int, str],
    encoder: CodeEncoder | None = None,
    default_split: str = "held_out",
) -> EncodedTable:
    """Encode the samples of ``samples`` from the events in ``events`` (whole subjects).

    Args:
        events: MEDS rows (subject_id, time, code, numeric_value) of the samples' subjects.
        samples: subject_id, prediction_time and (optional) boolean_value; sorted here by
            subject and time.
        plan: vocabulary, value statistics, ``max_events`` and ``lookback_days``.
        splits: subject -> split (``default_split`` when absent).
        encoder: the plan's `CodeEncoder` (made here when None).
        default_split: the split of a subject not in ``splits``.
    """
    encoder = encoder or CodeEncoder(plan)
    events = sort_events(events)
    subject_id = events.column("subject_id").to_numpy()
    time_us = event_times_us(events)
    sample_subject = samples.column("subject_id").to_numpy().astype(np.int64)
    sample_time = event_times_us(samples, "prediction_time")
    order = np.lexsort((sample_time, sample_subject))
    sample_subject, sample_time = sample_subject[order], sample_time[order]
    if "boolean_value" in samples.column_names:
        column = samples.column("boolean_value").take(pa.array(order))
        known = column.is_valid().to_numpy(zero_copy_only=False)
        truth = pc.fill_null(column, False).to_numpy(zero_copy_only=False)
        label = np.where(known, truth.astype(np.int8), -1).astype(np.int8)
    else:
        label = np.full(len(order), -1, np.int8)

    windows = history_windows(
        subject_id, time_us, sample_subject, sample_time, plan.lookback_days, plan.max_events
    )
    rows = windows.rows
    lengths = np.diff(windows.offsets)
    code = encoder.codes(events.column("code"))[rows]
    raw = pc.fill_null(
        events.column("numeric_value").cast(pa.float32()), pa.scalar(np.nan, pa.float32())
    )
    raw_value = raw.to_numpy().astype(np.float32)[rows]
    value, value_bin = encoder.values(code, raw_value)
    times = time_us[rows]
    owner = np.repeat(np.arange(len(order)), lengths)
    static = times == NO_TIME
    hours_before = np.where(static, 0.0, (sample_time[owner] - times) / US_PER_HOUR)
    previous = np.concatenate([[NO_TIME], times[:-1]])
    first = np.zeros(len(rows), bool)
    first[windows.offsets[:-1][lengths > 0]] = True
    gap = ~static & (previous != NO_TIME) & ~first
    delta_hours = np.where(gap, (times - np.where(gap, previous, times)) / US_PER_HOUR, 0.0)
    sex, age = _static_facts(events, time_us, sample_subject, sample_time)
    split = np.array([splits.get(int(s), default_split) for s in sample_subject], dtype="U8")
    encoded = EncodedSamples(
        subject_id=sample_subject,
        prediction_time=sample_time.astype("datetime64[us]"),
        label=label,
        split=split,
        sex=sex,
        age_years=age,
        offsets=windows.offsets,
        code=code.astype(np.int32),
        value_bin=value_bin,
        value=value,
        raw_value=raw_value,
        hours_before=hours_before.astype(np.float32),
        delta_hours=delta_hours.astype(np.float32),
    )
    return EncodedTable(encoded, events, rows)


def encode_samples(
    dataset: MedsDataset, labels: pa.Table, plan: EhrPlan, out: Path | None = None
) -> EncodedSamples:
    """Encode every labelled prediction time of ``dataset``, streaming one shard at a time.

    Args:
        dataset: the MEDS dataset.
        labels: subject_id, prediction_time, boolean_value (MEDS label schema).
        plan: the run's plan.
        out: a folder to assemble the samples in (memory-mapped arrays, see
            `EncodedSamples.open_folder`); None keeps them in memory.

    Returns:
        The samples, shard by shard (within a shard by subject and prediction time).

    Raises:
        InputError: labels name subjects that have no events in the dataset.
    """
    splits = dataset.splits()
    encoder = CodeEncoder(plan)
    label_subject = labels.column("subject_id").to_numpy().astype(np.int64)
    matched = np.zeros(len(label_subject), bool)
    pieces: list[EncodedSamples] = []
    scratch = Path(tempfile.mkdtemp(prefix=".encoding-", dir=out.parent)) if out else None
    piece_paths: list[Path] = []
    try:
        for path in dataset.shard_paths():
            table = dataset.read_shard(path, columns=EVENT_COLUMNS)
            present = pc.unique(table.column("subject_id")).to_numpy()
            mine = np.isin(label_subject, present)
            if not mine.any():
                continue
            wanted = pa.array(np.unique(label_subject[mine]))
            table = table.filter(pc.is_in(table.column("subject_id"), value_set=wanted))
            piece = encode_table(
                table, labels.filter(pa.array(mine)), plan, splits, encoder
            ).samples
            matched |= mine
            if scratch is None:
                pieces.append(piece)
            else:
                piece_paths.append(piece.save(scratch / f"{len(piece_paths):05d}.npz"))
        if not matched.all():
            raise InputError(
                f"{dataset.root}: {int((~matched).sum())} label rows name subjects with no "
                "events in the dataset (labels made for another dataset?)"
            )
        if out is None:
            return EncodedSamples.concatenate(pieces)
        return EncodedSamples.assemble_folder(piece_paths, out)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
