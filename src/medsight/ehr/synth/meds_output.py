"""The MEDS variant of the synthetic cohort: chunks of simulated rows streamed into a MEDS
folder by the shared `MedsWriter`, with every code described (units included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from medsight.ehr.io.meds_dataset import MedsWriter, shards_needed
from medsight.ehr.synth.codes import CODES
from medsight.ehr.synth.diabetes_cohort import NO_TIME, CohortChunk, iter_cohort

DATASET_NAME = "medsight-synthetic-diabetes"
#: ``dataset.json``'s created_at: fixed, so the same seed writes the same bytes
CREATED_AT = "2026-01-01T00:00:00+00:00"
#: about how many rows a patient has (sizes the shards)
ROWS_PER_PATIENT = 300
_CODE_NAMES = pa.array([info.code for info in CODES], pa.string())


def meds_table(chunk: CohortChunk) -> pa.Table:
    """A chunk's rows as a MEDS event table (null time for static rows, null value for none)."""
    time_us = chunk.row_time_us
    value = chunk.row_value
    n = len(time_us)
    return pa.table(
        {
            "subject_id": pa.array(chunk.row_subject, pa.int64()),
            "time": pa.array(time_us, pa.timestamp("us"), mask=time_us == NO_TIME),
            "code": pa.DictionaryArray.from_arrays(
                pa.array(chunk.row_code, pa.int32()), _CODE_NAMES
            ).cast(pa.string()),
            "numeric_value": pa.array(value.astype(np.float32), mask=np.isnan(value)),
            "text_value": pa.nulls(n, pa.large_string()),
        }
    )


def write_meds_cohort(
    out: Path, patients: int, seed: int, on_chunk: Callable[[int], None] | None = None
) -> Path:
    """Write the cohort as a MEDS folder at ``out`` (replaced once the new one is whole).

    Args:
        out: the MEDS folder to create.
        patients: how many patients.
        seed: the random seed; the same seed writes byte-identical files.
        on_chunk: called with the number of patients of each chunk written.

    Returns:
        ``out``.
    """
    with MedsWriter(
        out,
        dataset_name=DATASET_NAME,
        source=str(out),
        created_at=CREATED_AT,
        buckets=shards_needed(patients * ROWS_PER_PATIENT),
        seed=seed,
    ) as writer:
        for info in CODES:
            writer.describe_code(info.code, info.description, info.unit)
        for chunk in iter_cohort(patients, seed):
            writer.add(meds_table(chunk))
            if on_chunk:
                on_chunk(len(chunk.subject_id))
    return out
