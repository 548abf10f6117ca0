"""Per-(sample, code) aggregates of the flat event arrays: the machinery both feature sets use.

The baselines see a sample's history as a bag of (code, value, time) events. Both feature sets
need, for each sample and each kept code, the number of events and the last / mean / min / max
of the numeric values, optionally restricted to a look-back window. Doing that with a Python
loop over 10 million events takes minutes; here it is one stable sort of a
``sample * n_columns + column`` key per chunk of samples, then ``np.*.reduceat`` over the runs
of equal keys (a run is one sample's events of one code, oldest first because the sort is
stable and `EncodedSamples` stores each sample's events oldest first).

Conventions:

- a *column* is a kept code's position in the feature spec (``column_of_code[code]``; -1 for
  codes that are not kept: padding 0, unknown 1, and codes outside the top K);
- a look-back window of ``W`` hours holds the events with ``hours_before <= W``: closed at
  both ends, so an event exactly 30 days (720 h) before the prediction time is in the
  30-day window, and static rows (``hours_before`` 0) are in every window;
- *last* is the value of the newest event with a value (the last one in flat order; among
  events at the same time, the one stored last); values are ``raw_value`` (the code's unit),
  NaN meaning "no value", so count includes events without a value and the value statistics
  do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medsight.ehr.data.encoded_samples import EncodedSamples

#: first vocabulary index that is a real code (0 padding, 1 unknown/rare)
FIRST_CODE = 2
#: events handled per chunk: bounds the temporary arrays (about 60 bytes per event)
CHUNK_EVENTS = 4_000_000


@dataclass(frozen=True)
class CodeAggregates:
    """Aggregates of one chunk of samples, one entry per non-empty (sample, column) group.

    ``count_row``/``count_col``/``count`` cover every group with at least one event;
    ``value_row``/``value_col`` and the value statistics cover groups with at least one value.
    Rows are sample positions within the chunk.
    """

    count_row: np.ndarray  # (G,) int64
    count_col: np.ndarray  # (G,) int64
    count: np.ndarray  # (G,) int64
    value_row: np.ndarray  # (H,) int64
    value_col: np.ndarray  # (H,) int64
    last: np.ndarray  # (H,) float64
    mean: np.ndarray  # (H,) float64
    min: np.ndarray  # (H,) float64
    max: np.ndarray  # (H,) float64


class CodeEvents:
    """One chunk of samples' events of kept codes, sorted by (sample, column), oldest first.

    Args:
        code: Vocabulary index of each event of the chunk, shape ``(E,)``.
        raw_value: Value in the code's unit, NaN when none, shape ``(E,)``.
        hours_before: Prediction time minus event time in hours, shape ``(E,)``.
        lengths: Events per sample of the chunk, shape ``(n,)`` (sums to ``E``).
        column_of_code: Column of each vocabulary index, -1 when not kept, shape ``(V,)``;
            indices at or past ``V`` are not kept.
    """

    def __init__(
        self,
        code: np.ndarray,
        raw_value: np.ndarray,
        hours_before: np.ndarray,
        lengths: np.ndarray,
        column_of_code: np.ndarray,
    ) -> None:
        self.n_columns = int(column_of_code.max(initial=-1)) + 1
        code = np.asarray(code, dtype=np.int64)
        in_range = (code >= 0) & (code < column_of_code.shape[0])
        column = np.full(code.shape, -1, dtype=np.int64)
        column[in_range] = column_of_code[code[in_range]]
        kept = np.flatnonzero(column >= 0)
        row = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)[kept]
        key = row * max(self.n_columns, 1) + column[kept]
        # Stable: within a key, events keep their oldest-first order.
        order = np.argsort(key, kind="stable")
        self._key = key[order]
        self._raw = np.asarray(raw_value, dtype=np.float64)[kept][order]
        self._hours = np.asarray(hours_before, dtype=np.float32)[kept][order]

    def aggregate(self, max_hours: float | None = None) -> CodeAggregates:
        """Count and value statistics per (sample, column) over a look-back window.

        Args:
            max_hours: Keep events with ``hours_before <= max_hours``; None keeps all.

        Returns:
            The non-empty groups' aggregates (see `CodeAggregates`).
        """
        if max_hours is None:
            key, raw = self._key, self._raw
        else:
            inside = self._hours <= np.float32(max_hours)
            key, raw = self._key[inside], self._raw[inside]
        width = max(self.n_columns, 1)
        starts, group_key = _runs(key)
        count = np.diff(np.r_[starts, key.shape[0]])
        has_value = ~np.isnan(raw)
        value_key, values = key[has_value], raw[has_value]
        value_starts, value_group_key = _runs(value_key)
        n_values = np.diff(np.r_[value_starts, value_key.shape[0]])
        if values.shape[0]:
            last = values[value_starts + n_values - 1]
            mean = np.add.reduceat(values, value_starts) / n_values
            low = np.minimum.reduceat(values, value_starts)
            high = np.maximum.reduceat(values, value_starts)
        else:
            last = mean = low = high = np.zeros(0, dtype=np.float64)
        return CodeAggregates(
            count_row=group_key // width,
            count_col=group_key % width,
            count=count,
            value_row=value_group_key // width,
            value_col=value_group_key % width,
            last=last,
            mean=mean,
            min=low,
            max=high,
        )


def _runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and key of each run of equal values in a sorted key array."""
    if key.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return starts, key[starts]


def sample_chunks(
    samples: EncodedSamples, max_events: int | None = None
) -> Iterator[tuple[int, int, CodeEventsInput]]:
    """Contiguous sample ranges holding at most ``max_events`` events each, with their slices.

    A sample with more events than that is a chunk of its own. ``max_events`` defaults to
    `CHUNK_EVENTS`.

    Yields:
        ``(first, stop, events)``: samples ``first:stop`` and their events' arrays.
    """
    n = len(samples)
    limit = CHUNK_EVENTS if max_events is None else max_events
    offsets = np.asarray(samples.offsets, dtype=np.int64)
    first = 0
    while first < n:
        # The furthest stop whose events fit, but always at least one sample.
        stop = int(np.searchsorted(offsets, offsets[first] + limit, side="right")) - 1
        stop = min(max(stop, first + 1), n)
        lo, hi = int(offsets[first]), int(offsets[stop])
        yield (
            first,
            stop,
            CodeEventsInput(
                code=samples.code[lo:hi],
                raw_value=samples.raw_value[lo:hi],
                hours_before=samples.hours_before[lo:hi],
                lengths=np.diff(offsets[first : stop + 1]),
            ),
        )
        first = stop


@dataclass(frozen=True)
class CodeEventsInput:
    """The event arrays of one chunk of samples (views into `EncodedSamples`)."""

    code: np.ndarray
    raw_value: np.ndarray
    hours_before: np.ndarray
    lengths: np.ndarray

    def grouped(self, column_of_code: np.ndarray) -> CodeEvents:
        """These events grouped by (sample, column)."""
        return CodeEvents(
            self.code, self.raw_value, self.hours_before, self.lengths, column_of_code
        )


def top_codes(samples: EncodedSamples, vocab_size: int, k: int) -> np.ndarray:
    """The ``k`` codes present in the most samples (ties: lower index first).

    Frequency is the number of samples with at least one event of the code, not the number
    of events: a daily home-glucose reading should not crowd out a diagnosis every sample has.

    Args:
        samples: The samples to count in (the train split).
        vocab_size: Vocabulary size ``V``; real codes are ``2..V-1``.
        k: How many codes to keep.

    Returns:
        Vocabulary indices, most frequent first, shape ``(min(k, codes present),)``.
    """
    frequency = np.zeros(vocab_size, dtype=np.int64)
    for _, _, chunk in sample_chunks(samples):
        code = np.asarray(chunk.code, dtype=np.int64)
        row = np.repeat(np.arange(chunk.lengths.shape[0], dtype=np.int64), chunk.lengths)
        real = (code >= FIRST_CODE) & (code < vocab_size)
        # Distinct (sample, code) pairs by sort + diff (np.unique is several times slower).
        pairs = np.sort(row[real] * vocab_size + code[real])
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if pairs.shape[0] else pairs
        frequency += np.bincount(pairs % vocab_size, minlength=vocab_size)
    present = np.flatnonzero(frequency > 0)
    order = np.lexsort((present, -frequency[present]))
    return present[order][:k].astype(np.int64)


def codes_with_values(samples: EncodedSamples, codes: np.ndarray) -> np.ndarray:
    """Which of ``codes`` have a numeric value in ``samples``, shape ``(len(codes),)``."""
    code = np.asarray(samples.code, dtype=np.int64)
    valued = code[~np.isnan(samples.raw_value)]
    return np.isin(codes, valued)


def column_lookup(codes: np.ndarray, vocab_size: int) -> np.ndarray:
    """``column_of_code`` for `CodeEvents`: position of each code in ``codes``, else -1."""
    lookup = np.full(max(vocab_size, int(codes.max(initial=-1)) + 1), -1, dtype=np.int64)
    lookup[codes] = np.arange(codes.shape[0])
    return lookup


def code_name(code: int, code_names: Sequence[str] | None) -> str:
    """A code's name for feature names: the plan's name when given, else ``code_{index}``."""
    if code_names is not None and code < len(code_names):
        return str(code_names[code])
    return f"code_{code}"


@dataclass(frozen=True)
class KeptCodes:
    """The codes a feature set is built from (chosen on the train split), and their names.

    Attributes:
        vocab_size: vocabulary size ``V`` of the plan the samples were encoded with.
        codes: kept vocabulary indices, most frequent first (`top_codes`).
        code_names: feature name of each kept code.
        value_codes: the kept codes that had a numeric value in train.
        value_code_names: feature name of each value code.
    """

    vocab_size: int
    codes: np.ndarray
    code_names: list[str]
    value_codes: np.ndarray
    value_code_names: list[str]

    @classmethod
    def choose(
        cls,
        samples: EncodedSamples,
        vocab_size: int,
        top_k: int,
        code_names: Sequence[str] | None = None,
    ) -> KeptCodes:
        """The ``top_k`` codes present in most of ``samples``, and which of them have values."""
        codes = top_codes(samples, vocab_size, top_k)
        value_codes = codes[codes_with_values(samples, codes)]
        return cls(
            int(vocab_size),
            codes,
            [code_name(int(c), code_names) for c in codes],
            value_codes,
            [code_name(int(c), code_names) for c in value_codes],
        )

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """``column_of_code`` (see `column_lookup`) and each kept code's position among the
        value codes (-1: no values in train)."""
        value_position = np.full(self.codes.shape[0], -1, dtype=np.int64)
        value_position[np.isin(self.codes, self.value_codes)] = np.arange(self.value_codes.shape[0])
        return column_lookup(self.codes, self.vocab_size), value_position

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the keys of the feature specs' files)."""
        return {
            "vocab_size": self.vocab_size,
            "codes": self.codes.tolist(),
            "code_names": self.code_names,
            "value_codes": self.value_codes.tolist(),
            "value_code_names": self.value_code_names,
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> KeptCodes:
        """The codes `to_dict` described.

        Raises:
            KeyError: a key is missing.
            ValueError: the name lists do not match the code lists in length.
        """
        kept = cls(
            int(spec["vocab_size"]),
            np.asarray(spec["codes"], dtype=np.int64),
            [str(n) for n in spec["code_names"]],
            np.asarray(spec["value_codes"], dtype=np.int64),
            [str(n) for n in spec["value_code_names"]],
        )
        if (
            len(kept.code_names) != kept.codes.shape[0]
            or len(kept.value_code_names) != (kept.value_codes.shape[0])
        ):
            raise ValueError("feature spec: per-code lists differ in length")
        return kept
