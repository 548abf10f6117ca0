"""De-identify one patient's MEDS rows sent as JSON: ``{"events": [{...}, ...]}``.

Each row may have ``subject_id``, ``time`` (ISO 8601, or null for static rows such as sex),
``code``, ``numeric_value`` and ``text_value``. Only ``time``, ``code`` and
``numeric_value`` are kept: ``text_value`` is free text and is dropped, unknown keys are
dropped, times move by the patient's keyed offset, and ``subject_id`` becomes the keyed
pseudonymous id. Rows without a ``subject_id`` are one anonymous patient: their offset is
keyed on the rows themselves, so no two such records share a shift.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from medsight.ehr.deid.date_shift import shift_meds_time
from medsight.ehr.deid.deidentified_record import DeidentifiedRecord
from medsight.ehr.deid.patient_keys import patient_keys
from medsight.ehr.io.meds_dataset import has_vocabulary
from medsight.errors import InputError

MAX_CODE_CHARS = 256


def _subject(events: list[Any], source: str) -> str | None:
    subjects = set()
    for i, row in enumerate(events):
        if not isinstance(row, dict):
            raise InputError(f"{source}: event {i}: not a JSON object")
        value = row.get("subject_id")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InputError(f"{source}: event {i}: subject_id must be an integer or a string")
        subjects.add(str(value).strip())
    if len(subjects) > 1:
        raise InputError(
            f"{source}: the events belong to {len(subjects)} subjects; send one patient per request"
        )
    return subjects.pop() if subjects else None


def _numeric(value: Any, i: int, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{source}: event {i}: numeric_value must be a number or null")
    if not math.isfinite(value):
        raise InputError(f"{source}: event {i}: numeric_value is not finite")
    return float(value)


def deidentify_meds_rows(body: Any, key: str, source: str = "events") -> DeidentifiedRecord:
    """The de-identified copy of one patient's MEDS rows (the input is not changed).

    Args:
        body: the parsed JSON, ``{"events": [...]}``.
        key: the service's de-identification secret.
        source: what to call the input in error messages (never patient data).

    Returns:
        ``{"events": [{"subject_id", "time", "code", "numeric_value"}, ...]}`` (kind
        ``meds``) with the keyed pseudonym, subject id and offset.

    Raises:
        InputError: not ``{"events": [...]}``, no events, several subjects, a row without
            a vocabulary code, an unreadable time, a non-numeric or non-finite value.
    """
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise InputError(f"{source}: expected a JSON object with an 'events' list")
    if not events:
        raise InputError(f"{source}: the 'events' list is empty")
    subject = _subject(events, source)
    if subject is not None:
        identifier = "subject:" + subject
    else:
        canonical = json.dumps(events, sort_keys=True, separators=(",", ":"), default=str)
        identifier = "content:" + hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()
    keys = patient_keys(key, identifier)
    rows = []
    for i, row in enumerate(events):
        code = row.get("code")
        if not isinstance(code, str) or len(code) > MAX_CODE_CHARS or not has_vocabulary(code):
            raise InputError(
                f"{source}: event {i}: code must be VOCABULARY//value (e.g. ICD10CM//E11.9)"
            )
        time = row.get("time")
        if time is not None:
            if not isinstance(time, str):
                raise InputError(f"{source}: event {i}: time must be an ISO 8601 string or null")
            shifted = shift_meds_time(time, keys.offset_days)
            if shifted is None:
                raise InputError(f"{source}: event {i}: time is not an ISO 8601 date or date-time")
            time = shifted
        rows.append(
            {
                "subject_id": keys.subject_id,
                "time": time,
                "code": code,
                "numeric_value": _numeric(row.get("numeric_value"), i, source),
            }
        )
    return DeidentifiedRecord(
        record={"events": rows},
        kind="meds",
        pseudonym=keys.pseudonym,
        subject_id=keys.subject_id,
        offset_days=keys.offset_days,
    )
