"""Hand-made MEDS folders for the encoding tests, written with the real MedsWriter.

A module with its own name (not conftest.py): test modules import its helpers, and several
conftest modules would shadow each other on sys.path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from medsight.ehr.io.meds_dataset import MedsWriter

DAY0 = dt.datetime(2100, 1, 1)
#: (subject_id, day or None for a static row, code, value or None)
Row = tuple[int, float | None, str, float | None]


def day(n: float) -> dt.datetime:
    """The time ``n`` days after `DAY0`."""
    return DAY0 + dt.timedelta(days=n)


def write_meds(
    out: Path, rows: Sequence[Row], splits: dict[int, str] | None = None, buckets: int = 3
) -> Path:
    """A MEDS folder holding ``rows`` (subjects in ``splits``' splits, default train)."""
    subjects = {r[0] for r in rows}
    chosen = {s: (splits or {}).get(s, "train") for s in subjects}
    with MedsWriter(out, dataset_name="data-test", buckets=buckets, splits=chosen) as writer:
        writer.add(
            {
                "subject_id": [r[0] for r in rows],
                "time": [None if r[1] is None else day(r[1]) for r in rows],
                "code": [r[2] for r in rows],
                "numeric_value": [r[3] for r in rows],
            }
        )
    return out


def label_table(samples: Sequence[tuple[int, float, bool | None]]) -> pa.Table:
    """A MEDS label table of (subject, day, outcome) samples."""
    return pa.table(
        {
            "subject_id": pa.array([s[0] for s in samples], pa.int64()),
            "prediction_time": pa.array([day(s[1]) for s in samples], pa.timestamp("us")),
            "boolean_value": pa.array([s[2] for s in samples], pa.bool_()),
        }
    )


def history(subject: int, days: int = 30, birth_years: float = 60.0, sex: str = "F") -> list[Row]:
    """A subject with a birth, a sex and a visit with an HbA1c every 10 days up to ``days``."""
    rows: list[Row] = [
        (subject, -365.25 * birth_years, "MEDS_BIRTH", None),
        (subject, None, f"SEX//{sex}", None),
    ]
    for d in range(0, days, 10):
        rows.append((subject, float(d), "ENCOUNTER//ambulatory", None))
        rows.append((subject, float(d) + 0.01, "LOINC//4548-4", 6.0 + subject % 5 + d / 100))
    return rows
