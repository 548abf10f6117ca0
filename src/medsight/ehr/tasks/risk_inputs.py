"""One patient's record for prediction: a FHIR R4 Bundle, or MEDS rows (parquet or JSON).

MEDS rows JSON is a list of ``{"subject_id"?, "time", "code", "numeric_value"?,
"text_value"?}`` objects, or an object with that list under ``"events"`` (and optionally a
``"prediction_time"``). Times are ISO strings (zoned times become UTC). A record must hold
one patient; the subject id of the rows is kept (0 when absent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medsight.ehr.io.event_times import ZoneState, parse_time_strings
from medsight.ehr.io.meds_dataset import events_table
from medsight.errors import InputError


@dataclass(frozen=True)
class PatientRecord:
    """One patient's MEDS rows and, when the record names one, its prediction time."""

    events: pa.Table
    prediction_time: datetime | None = None


def _rows_table(rows: list[Any], source: str) -> pa.Table:
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{source}: expected a list of MEDS row objects (time, code, ...)")
    for i, row in enumerate(rows, start=1):
        if not row.get("code"):
            raise InputError(f"{source}: row {i}: no code")
    times = pa.array([r.get("time") or None for r in rows], pa.string())
    parsed = parse_time_strings(times, source, 1, ZoneState())
    values = []
    for i, row in enumerate(rows, start=1):
        value = row.get("numeric_value")
        if value is not None and not isinstance(value, int | float):
            raise InputError(f"{source}: row {i}: numeric_value is not a number")
        values.append(value)
    return events_table(
        {
            "subject_id": [int(r.get("subject_id") or 0) for r in rows],
            "time": parsed,
            "code": [str(r["code"]) for r in rows],
            "numeric_value": values,
            "text_value": [r.get("text_value") for r in rows],
        }
    )


def _from_json(path: Path) -> PatientRecord:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        from medsight.ehr.io.fhir_events import bundle_patient_events

        try:
            return PatientRecord(bundle_patient_events(data))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    moment = None
    if isinstance(data, dict):
        if isinstance(data.get("prediction_time"), str):
            when = parse_time_strings(
                pa.array([data["prediction_time"]]), str(path), 1, ZoneState()
            )
            moment = when[0].as_py()
        data = data.get("events")
    if not isinstance(data, list):
        raise InputError(
            f"{path}: neither a FHIR Bundle nor MEDS rows (a list of {{time, code, ...}})"
        )
    return PatientRecord(_rows_table(data, str(path)), moment)


def read_patient_record(path: Path) -> PatientRecord:
    """The record in ``path`` (``.json``: FHIR Bundle or MEDS rows; ``.parquet``: MEDS rows).

    Raises:
        InputError: unreadable, not a record, no events, or several patients.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable parquet file ({exc})") from None
        missing = {"time", "code"} - set(table.column_names)
        if missing:
            raise InputError(f"{path}: MEDS rows need columns time and code")
        columns = {n: table.column(n) for n in table.column_names}
        columns.setdefault("subject_id", pa.array([0] * table.num_rows, pa.int64()))
        record = PatientRecord(events_table(columns))
    else:
        record = _from_json(path)
    events = record.events
    if events.num_rows == 0:
        raise InputError(f"{path}: the record has no events")
    if len(pc.unique(events.column("subject_id"))) > 1:
        raise InputError(f"{path}: the record holds several patients; send one")
    return record
