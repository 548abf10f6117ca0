"""``--from events-csv``: a long CSV of events, one row per event, streamed in blocks.

Columns (header required, any order, any case)::

    subject_id     integer
    time           ISO 8601 date or date-time; blank for static rows (sex); zoned times are
                   converted to UTC, and a file may not mix zoned and zone-less times
    code           VOCABULARY//value (e.g. LOINC//4548-4) or a MEDS_* code
    numeric_value  a finite number or blank
    text_value     optional
    unit           optional: the value's unit (codes whose rows differ are normalised)

A bad value stops the import with one line
naming the file and the 1-based data row; no MEDS folder is left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.io.csv_tables import Chunk, read_chunks
from medsight.ehr.io.event_times import ZoneState, parse_time_strings
from medsight.ehr.io.meds_dataset import BIRTH, MedsWriter, has_vocabulary
from medsight.errors import InputError

REQUIRED = ("subject_id", "time", "code", "numeric_value")
#: MEDS stores numeric_value as float32
FLOAT32_MAX = 3.4028234663852886e38


class _Births:
    """Each subject's MEDS_BIRTH time and the row it came from (conflicts name both rows)."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[object, int]] = {}

    def check(self, chunk: Chunk, subjects: pa.Array, times: pa.Array, codes: pa.Array) -> None:
        is_birth = pc.fill_null(pc.equal(codes, BIRTH), False)
        if not pc.any(is_birth).as_py():
            return
        rows = pc.indices_nonzero(is_birth).to_pylist()
        for i, subject, time in zip(
            rows,
            pc.take(subjects, rows).to_pylist(),
            pc.take(times, rows).to_pylist(),
            strict=True,
        ):
            if time is None:
                chunk.fail(i, f"{BIRTH} has no time")
            earlier = self.seen.setdefault(subject, (time, chunk.first_row + i))
            if earlier[0] != time:
                chunk.fail(
                    i, f"the subject's {BIRTH} time differs from the one at row {earlier[1]}"
                )


def _codes(chunk: Chunk) -> pa.Array:
    codes = chunk.text("code")
    if codes.null_count:
        chunk.fail(int(pc.index(codes.is_null(), True).as_py()), "code is empty")
    for code in pc.unique(codes).to_pylist():
        if not has_vocabulary(code):
            chunk.fail(
                int(pc.index(codes, code).as_py()),
                "code has no vocabulary (expected VOCABULARY//value, e.g. LOINC//4548-4)",
            )
    return codes


def import_events_csv(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from a long events CSV (see the module docstring).

    Args:
        source: the CSV file.
        out: the MEDS folder to write.
        splits: subject_id -> split for subjects whose split is given.
        seed: key of the default split of the others.

    Raises:
        InputError: a bad header, value, time or code (names file and row).
    """
    if source.is_dir():
        raise InputError(f"{source}: --from events-csv takes one CSV file, not a folder")
    zones = ZoneState()
    births = _Births()
    with MedsWriter(
        out, dataset_name=source.stem, source=str(source), splits=splits, seed=seed
    ) as w:
        for chunk in read_chunks(source, REQUIRED):
            subjects = chunk.integers("subject_id")
            times = parse_time_strings(chunk.text("time"), chunk.source, chunk.first_row, zones)
            codes = _codes(chunk)
            values = chunk.floats("numeric_value")
            too_big = pc.fill_null(pc.greater(pc.abs(values), FLOAT32_MAX), False)
            if pc.any(too_big).as_py():
                chunk.fail(int(pc.index(too_big, True).as_py()), "numeric_value is out of range")
            births.check(chunk, subjects, times, codes)
            columns: dict[str, pa.Array] = {
                "subject_id": subjects,
                "time": times,
                "code": codes,
                "numeric_value": values,
                "text_value": chunk.text("text_value"),
            }
            if "unit" in chunk.table.column_names:
                columns["unit"] = chunk.text("unit")
            w.add(columns)
