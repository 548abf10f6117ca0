"""Turn one patient's record (FHIR R4 Bundle or MEDS rows as JSON) into a stored, de-identified
MEDS-rows parquet: the input file of an EHR risk prediction.

The body is parsed in memory and de-identified (`medsight.ehr.deid`: names, identifiers,
contact data and free text removed, ids pseudonymised, dates moved by the patient's keyed
offset) before anything is written; only then is it converted to MEDS rows (a Bundle with
`bundle_patient_events`, validated with ``fhir.resources``) and stored as
``uploads/JOB/events.parquet``, whole or not at all. The original body and the
de-identified JSON are never written. The input hash is SHA-256 of the de-identified
record's canonical JSON, so it identifies the data without being derived from PHI.
Error messages name the field or entry at fault, never a value from the record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medsight.ehr.deid import DeidentifiedRecord, deidentify_bundle, deidentify_meds_rows
from medsight.ehr.deid.date_shift import parse_meds_time
from medsight.ehr.io.fhir_events import bundle_patient_events
from medsight.ehr.io.meds_dataset import events_table
from medsight.errors import InputError
from medsight.runs.atomic import atomic_dir
from medsight.serve.api.errors import ApiError
from medsight.serve.store.deidentified_input import RECORD_FILE, StoredInput, stored_path

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
RECORD_MEDIA = (FHIR_JSON, PLAIN_JSON)
SOURCE = "request body"


def _refuse_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def parse_json(body: bytes) -> Any:
    """The body as JSON (NaN and Infinity refused).

    Raises:
        ApiError: ``invalid_input`` when it is not UTF-8 JSON (nothing of it is quoted).
    """
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError("invalid_input", f"{SOURCE}: not valid JSON") from None


def deidentify_body(data: Any, media_type: str, key: str) -> DeidentifiedRecord:
    """De-identify a parsed record: a Bundle (``application/fhir+json``, or plain JSON with a
    ``resourceType``), else ``{"events": [...]}`` MEDS rows.

    Raises:
        InputError: not a one-patient Bundle / not MEDS rows (see `medsight.ehr.deid`).
    """
    if media_type == FHIR_JSON or (isinstance(data, dict) and "resourceType" in data):
        return deidentify_bundle(data, key, source=SOURCE)
    return deidentify_meds_rows(data, key, source=SOURCE)


def events_of(record: DeidentifiedRecord) -> pa.Table:
    """The de-identified record as a MEDS event table, static rows first, then by time.

    Raises:
        InputError: a resource that is not valid FHIR R4, or an event the MEDS schema refuses.
    """
    if record.kind == "fhir":
        table = bundle_patient_events(record.record, record.subject_id)
    else:
        rows = record.record["events"]
        times = [None if r["time"] is None else parse_meds_time(r["time"]) for r in rows]
        table = events_table(
            {
                "subject_id": [r["subject_id"] for r in rows],
                "time": times,
                "code": [r["code"] for r in rows],
                "numeric_value": [r["numeric_value"] for r in rows],
            }
        )
    order = pc.sort_indices(table, sort_keys=[("time", "ascending", "at_start")])
    return table.take(order)


def store_record(body: bytes, media_type: str, dest: Path, key: str) -> StoredInput:
    """Parse, de-identify, convert and store one patient's record in the new folder ``dest``.

    Args:
        body: the request body (read under the record size limit).
        media_type: the request's media type, without parameters.
        dest: the job's upload folder (must not exist).
        key: the service's de-identification secret.

    Raises:
        ApiError: ``invalid_input`` for bad JSON, not FHIR, several patients, an invalid
            resource or event; nothing is left in ``dest`` then.
    """
    data = parse_json(body)
    try:
        record = deidentify_body(data, media_type, key)
        del data
        table = events_of(record)
    except InputError as exc:
        raise ApiError("invalid_input", str(exc)) from None
    with atomic_dir(dest) as tmp:
        pq.write_table(table, tmp / RECORD_FILE)
    return StoredInput(
        path=stored_path(dest, record.kind), kind=record.kind, sha256=record.sha256(), slices=0
    )


__all__ = ["RECORD_MEDIA", "parse_json", "store_record"]
