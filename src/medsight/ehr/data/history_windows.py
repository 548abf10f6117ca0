"""Which of a subject's events a sample may see: the no-future-leak boundary, in one place.

For a sample (subject, prediction time) the visible events are the subject's static rows
(null time: sex and other facts) plus its timed events with ``time <= prediction_time``
within the look-back window, of which only the last ``max_events`` are kept (static rows
first, then the timed events oldest first). Nothing after the prediction time is ever
selected, whatever the data holds.

Times are int64 microseconds; a null time is `NO_TIME` (sorts first, as MEDS puts static
rows first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: a null (static) time as int64 microseconds: below every real time
NO_TIME = np.iinfo(np.int64).min
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


@dataclass(frozen=True)
class Windows:
    """Visible rows of each sample, flat: sample ``i`` owns ``rows[offsets[i]:offsets[i + 1]]``."""

    rows: np.ndarray  # (E,) int64 row numbers into the sorted events
    offsets: np.ndarray  # (n + 1,) int64
    #: False for samples whose subject has no events here
    found: np.ndarray  # (n,) bool


def event_times_us(table: pa.Table, column: str = "time") -> np.ndarray:
    """A timestamp column as int64 microseconds, nulls as `NO_TIME`."""
    times = table.column(column).cast(pa.timestamp("us")).cast(pa.int64())
    return pc.fill_null(times, NO_TIME).to_numpy().astype(np.int64, copy=False)


def sort_events(table: pa.Table) -> pa.Table:
    """Rows sorted by subject and time (static rows first), keeping the order of ties.

    MEDS shards are already in this order; then nothing is copied.
    """
    subject = table.column("subject_id").to_numpy()
    time = event_times_us(table)
    if len(subject) < 2:
        return table
    ordered = (np.diff(subject) > 0) | ((np.diff(subject) == 0) & (np.diff(time) >= 0))
    if ordered.all():
        return table
    return table.take(pa.array(np.lexsort((time, subject))))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for every (s, n), vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return (np.arange(total, dtype=np.int64) + shift).astype(np.int64)


def history_windows(
    subject_id: np.ndarray,
    time_us: np.ndarray,
    sample_subject: np.ndarray,
    sample_time_us: np.ndarray,
    lookback_days: float,
    max_events: int,
) -> Windows:
    """The visible rows of every sample (see the module docstring).

    Args:
        subject_id: (R,) the events' subjects, sorted (see `sort_events`).
        time_us: (R,) their times, `NO_TIME` for static rows, sorted within a subject.
        sample_subject: (n,) each sample's subject.
        sample_time_us: (n,) each sample's prediction time.
        lookback_days: timed events older than this before the prediction time are left out.
        max_events: at most this many events per sample (the most recent kept).
    """
    n = len(sample_subject)
    lo_subject = np.searchsorted(subject_id, sample_subject, side="left")
    hi_subject = np.searchsorted(subject_id, sample_subject, side="right")
    found = hi_subject > lo_subject
    static_end = np.empty(n, np.int64)
    timed_lo = np.empty(n, np.int64)
    timed_hi = np.empty(n, np.int64)
    window = int(lookback_days * US_PER_DAY)
    for i in range(n):
        a, b, t = int(lo_subject[i]), int(hi_subject[i]), int(sample_time_us[i])
        times = time_us[a:b]
        s = a + int(np.searchsorted(times, NO_TIME, side="right"))
        static_end[i] = s
        timed = time_us[s:b]
        timed_hi[i] = s + int(np.searchsorted(timed, t, side="right"))
        timed_lo[i] = s + int(np.searchsorted(timed, t - window, side="left"))
    n_static = np.minimum(static_end - lo_subject, max_events)
    static_lo = static_end - n_static
    timed_lo = np.maximum(timed_lo, timed_hi - (max_events - n_static))
    n_timed = np.maximum(timed_hi - timed_lo, 0)
    starts = np.stack([static_lo, timed_lo], axis=1).ravel()
    lengths = np.stack([n_static, n_timed], axis=1).ravel()
    rows = _ranges(starts, lengths)
    offsets = np.concatenate([[0], np.cumsum(n_static + n_timed)]).astype(np.int64)
    return Windows(rows=rows, offsets=offsets, found=found)
