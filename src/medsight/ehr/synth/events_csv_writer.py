"""The events-CSV variant of the synthetic cohort: one long ``events.csv`` (``subject_id,time,
code,numeric_value,text_value``; ISO 8601 times, empty for static rows) and ``splits.csv``
(``subject_id,split``) beside it, the shapes `medsight ehr import --from events-csv` reads."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from medsight.ehr.io.meds_dataset import split_of
from medsight.ehr.synth.diabetes_cohort import NO_TIME, CohortChunk, iter_cohort
from medsight.ehr.synth.meds_output import meds_table
from medsight.runs.atomic import atomic_dir

EVENTS_FILE = "events.csv"
SPLITS_FILE = "splits.csv"
COLUMNS = ("subject_id", "time", "code", "numeric_value", "text_value")


def _csv_table(chunk: CohortChunk) -> pa.Table:
    table = meds_table(chunk)
    time_us = chunk.row_time_us
    static = time_us == NO_TIME
    text = np.datetime_as_string(np.where(static, 0, time_us).astype("datetime64[us]"), unit="s")
    return table.set_column(1, "time", pa.array(text, pa.string(), mask=static)).set_column(
        3, "numeric_value", pa.array(chunk.row_value, pa.float64(), mask=np.isnan(chunk.row_value))
    )


def write_events_csv_cohort(
    out: Path, patients: int, seed: int, on_chunk: Callable[[int], None] | None = None
) -> Path:
    """Write the cohort as ``out/events.csv`` and ``out/splits.csv`` (``out`` replaced whole).

    Splits are MEDS's default keyed hash (`split_of` with ``seed``), so importing with
    ``--splits`` gives the same split as the MEDS variant.

    Returns:
        ``out``.
    """
    with atomic_dir(out) as tmp:
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        with (
            open(tmp / EVENTS_FILE, "wb") as events,
            open(tmp / SPLITS_FILE, "w", newline="") as splits,
        ):
            events.write((",".join(COLUMNS) + "\n").encode())
            split_writer = csv.writer(splits, lineterminator="\n")
            split_writer.writerow(["subject_id", "split"])
            for chunk in iter_cohort(patients, seed):
                pacsv.write_csv(_csv_table(chunk), events, options)
                split_writer.writerows((int(s), split_of(int(s), seed)) for s in chunk.subject_id)
                if on_chunk:
                    on_chunk(len(chunk.subject_id))
    return out
