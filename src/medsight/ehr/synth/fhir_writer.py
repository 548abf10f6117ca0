"""The FHIR variant of the synthetic cohort: FHIR R4 Bulk Data NDJSON, one file per resource
type (``Patient.ndjson``, ``Encounter.ndjson``, ``Condition.ndjson``, ``Observation.ndjson``,
``MedicationRequest.ndjson``), one resource per line.

The same patients and events as the MEDS variant (same seed), plus the PHI a real export
carries and de-identification must remove: names, MRN identifiers, addresses, telecom, exact
birth dates and free-text notes (``Observation.note``, ``Condition.note``) that mention them.
Codings use ``http://hl7.org/fhir/sid/icd-10-cm``, ``http://loinc.org`` and
``http://www.whocc.no/atc``; quantities carry UCUM units. Times are UTC (``Z``); an inpatient
Encounter's ``period.end`` and ``hospitalization.dischargeDisposition`` carry the discharge.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medsight.ehr.synth.codes import CODES
from medsight.ehr.synth.diabetes_cohort import (
    HOUR_US,
    MINUTE_US,
    NO_TIME,
    CohortChunk,
    iter_cohort,
)
from medsight.ehr.synth.identities import (
    MRN_SYSTEMS,
    SITE_NAMES,
    Identity,
    draw_identities,
    uuids,
)
from medsight.runs.atomic import atomic_dir

RESOURCE_TYPES = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest")
SYSTEMS = {
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "LOINC": "http://loinc.org",
    "ATC": "http://www.whocc.no/atc",
}
UCUM = "http://unitsofmeasure.org"
_ENCOUNTER_CLASS = {
    "ENCOUNTER//ambulatory": ("AMB", "ambulatory", 30 * MINUTE_US),
    "ENCOUNTER//emergency": ("EMER", "emergency", 4 * HOUR_US),
    "ENCOUNTER//inpatient": ("IMP", "inpatient encounter", 0),
}
_VITALS = {"LOINC//8480-6", "LOINC//8462-4", "LOINC//39156-5"}
_ACTIVITY = {"LOINC//55423-8"}
#: chance that a Condition / an Observation carries a free-text note (with PHI)
_CONDITION_NOTE = 0.08
_OBSERVATION_NOTE = 0.03
_CONDITION_NOTES = (
    "Pt {given} {family} (MRN {mrn}) seen in clinic; lives at {line}, {city}. Foot exam done.",
    "Discussed diet with {given}; daughter to call back on {phone}.",
    "{family}, {given}: reviewed problem list, DOB {birth}. Follow up in 3 months.",
)
_OBSERVATION_NOTES = (
    "Reading reported by {given} {family} by phone ({phone}).",
    "Sample drawn at home visit, {line}, {city} {state}.",
    "Patient {given} (MRN {mrn}) fasting since midnight.",
)


def _coding(code: str) -> dict[str, Any]:
    info = CODES_BY_NAME[code]
    return {"system": SYSTEMS[info.vocabulary], "code": info.value, "display": info.description}


CODES_BY_NAME = {info.code: info for info in CODES}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _observation_category(code: str) -> dict[str, Any]:
    kind = "vital-signs" if code in _VITALS else "activity" if code in _ACTIVITY else "laboratory"
    return {"coding": [{"system": _CATEGORY, "code": kind}]}


def _iso(times_us: np.ndarray) -> list[str]:
    text = np.datetime_as_string(times_us.astype("datetime64[us]"), unit="s")
    return [f"{t}Z" for t in text.tolist()]


def _patient(person: Identity, female: bool, site_b: bool, birth: str, death: str | None):
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person.patient_id,
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "MR",
                            "display": "Medical record number",
                        }
                    ]
                },
                "system": MRN_SYSTEMS[site_b],
                "value": person.mrn,
            }
        ],
        "name": [{"use": "official", "family": person.family, "given": [person.given]}],
        "telecom": [
            {"system": "phone", "value": person.phone, "use": "home"},
            {"system": "email", "value": person.email},
        ],
        "gender": "female" if female else "male",
        "birthDate": birth,
        "address": [
            {
                "use": "home",
                "line": [person.line],
                "city": person.city,
                "state": person.state,
                "postalCode": person.postal_code,
                "country": "US",
            }
        ],
        "managingOrganization": {"display": SITE_NAMES[site_b]},
    }
    if death:
        resource["deceasedDateTime"] = death
    return resource


def _note(template: str, person: Identity, birth: str) -> list[dict[str, str]]:
    return [
        {
            "text": template.format(
                given=person.given,
                family=person.family,
                mrn=person.mrn,
                line=person.line,
                city=person.city,
                state=person.state,
                phone=person.phone,
                birth=birth,
            )
        }
    ]


def _chunk_resources(chunk: CohortChunk, rng: np.random.Generator) -> Iterator[tuple[str, str]]:
    """Every resource of a chunk as (resource type, NDJSON line), one at a time."""
    people = draw_identities(rng, chunk.female, chunk.site_b)
    births = np.datetime_as_string(chunk.birth_us.astype("datetime64[us]"), unit="D").tolist()
    deaths = _iso(np.maximum(chunk.death_us, 0))
    for i, person in enumerate(people):
        death = deaths[i] if chunk.death_us[i] >= 0 else None
        resource = _patient(person, bool(chunk.female[i]), bool(chunk.site_b[i]), births[i], death)
        yield "Patient", _dump(resource)

    rows = chunk.row_time_us != NO_TIME
    patient = chunk.row_patient[rows]
    time_us = chunk.row_time_us[rows]
    code_i = chunk.row_code[rows].tolist()
    values = chunk.row_value[rows].tolist()
    visit = chunk.row_visit[rows]
    times = _iso(time_us)
    n = len(times)
    ids = uuids(rng, n)
    visits = np.unique(visit[visit >= 0]).tolist()
    encounter_ids = dict(zip(visits, uuids(rng, len(visits)), strict=True))
    discharge_code = CODES_BY_NAME["DISCHARGE//home"]
    is_discharge = chunk.row_code[rows] == CODES.index(discharge_code)
    discharge = dict(zip(visit[is_discharge].tolist(), time_us[is_discharge].tolist(), strict=True))
    notes = rng.random(n).tolist()
    template = rng.integers(0, 3, n).tolist()
    visit_list = visit.tolist()
    time_list = time_us.tolist()
    patient_list = patient.tolist()
    for r in range(n):
        k = code_i[r]
        kind = _KIND[k]
        if kind is None:  # birth and death live on Patient, discharges on their Encounter
            continue
        p = patient_list[r]
        person = people[p]
        v = visit_list[r]
        encounter = f',"encounter":{{"reference":"Encounter/{encounter_ids[v]}"}}' if v >= 0 else ""
        head = f'{{"resourceType":"{kind}","id":"'
        subject = f'"subject":{{"reference":"Patient/{person.patient_id}"}}'
        if kind == "Encounter":
            resource = _encounter(
                CODES[k].code,
                encounter_ids[v],
                subject,
                times[r],
                discharge.get(v),
                time_list[r],
                SITE_NAMES[int(chunk.site_b[p])],
            )
        elif kind == "Condition":
            note = ""
            if notes[r] < _CONDITION_NOTE:
                note = ',"note":' + _dump(_note(_CONDITION_NOTES[template[r]], person, births[p]))
            resource = (
                f'{head}{ids[r]}",{_BODY[k]},{subject}{encounter},"onsetDateTime":"{times[r]}",'
                f'"recordedDate":"{times[r]}"{note}}}'
            )
        elif kind == "Observation":
            note = ""
            if notes[r] < _OBSERVATION_NOTE:
                note = ',"note":' + _dump(_note(_OBSERVATION_NOTES[template[r]], person, births[p]))
            number = values[r]
            value = str(int(number)) if CODES[k].decimals == 0 else repr(number)
            resource = (
                f'{head}{ids[r]}",{_BODY[k]},{subject}{encounter},'
                f'"effectiveDateTime":"{times[r]}","valueQuantity":{{"value":{value},'
                f"{_UNIT[k]}}}{note}}}"
            )
        else:
            resource = f'{head}{ids[r]}",{_BODY[k]},{subject},"authoredOn":"{times[r]}",{_SUPPLY}}}'
        yield kind, resource


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _inner(value: dict[str, Any]) -> str:
    """A JSON object's members without the braces (to splice into a resource)."""
    return _dump(value)[1:-1]


def _encounter(
    code: str,
    encounter_id: str,
    subject: str,
    start: str,
    discharge_us: int | None,
    start_us: int,
    site: str,
) -> str:
    act, display, length = _ENCOUNTER_CLASS[code]
    end = _iso(np.array([discharge_us if discharge_us is not None else start_us + length]))[0]
    extra: dict[str, Any] = {
        "period": {"start": start, "end": end},
        "serviceProvider": {"display": site},
    }
    if discharge_us is not None:
        extra["hospitalization"] = {
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                        "code": "home",
                        "display": "Home",
                    }
                ]
            }
        }
    head = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": act,
            "display": display,
        },
    }
    return f"{{{_inner(head)},{subject},{_inner(extra)}}}"


def _kind(code: str) -> str | None:
    if code in _ENCOUNTER_CLASS:
        return "Encounter"
    return {"ICD10CM": "Condition", "LOINC": "Observation", "ATC": "MedicationRequest"}.get(
        code.partition("//")[0]
    )


def _body(code: str) -> str:
    """The members a resource of ``code`` shares with every other of that code."""
    kind = _kind(code)
    if kind == "Condition":
        return _inner(
            {
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                "condition-category",
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": {"coding": [_coding(code)]},
            }
        )
    if kind == "Observation":
        return _inner(
            {
                "status": "final",
                "category": [_observation_category(code)],
                "code": {"coding": [_coding(code)]},
            }
        )
    if kind == "MedicationRequest":
        return _inner(
            {
                "status": "completed",
                "intent": "order",
                "medicationCodeableConcept": {"coding": [_coding(code)]},
            }
        )
    return ""


_KIND = [_kind(info.code) for info in CODES]
_BODY = [_body(info.code) for info in CODES]
_UNIT = [_inner({"unit": info.unit, "system": UCUM, "code": info.ucum}) for info in CODES]
_SUPPLY = _inner(
    {
        "dispenseRequest": {
            "expectedSupplyDuration": {"value": 60, "unit": "days", "system": UCUM, "code": "d"}
        }
    }
)


def write_fhir_cohort(
    out: Path, patients: int, seed: int, on_chunk: Callable[[int], None] | None = None
) -> Path:
    """Write the cohort as FHIR R4 Bulk Data NDJSON files in ``out`` (replaced whole).

    Returns:
        ``out``.
    """
    with atomic_dir(out) as tmp, contextlib.ExitStack() as stack:
        files = {
            kind: stack.enter_context(open(tmp / f"{kind}.ndjson", "w", encoding="utf-8"))
            for kind in RESOURCE_TYPES
        }
        for index, chunk in enumerate(iter_cohort(patients, seed)):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1)))
            for kind, line in _chunk_resources(chunk, rng):
                files[kind].write(line + "\n")
            if on_chunk:
                on_chunk(len(chunk.subject_id))
    return out
