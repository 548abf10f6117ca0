"""FHIR R4 resources to MEDS event rows: the one mapping the bulk importer and the service use.

Each resource is validated with ``fhir.resources`` (its R4B models: FHIR 4.3, which reads
R4 resources of the types used here; fhir.resources 8 has no separate R4 package), then
mapped to rows ``subject_id, time, code, numeric_value, text_value``:

=====================  ====================================================================
Patient                ``MEDS_BIRTH`` at birthDate; ``SEX//F|M|UNK`` (static, null time);
                       ``MEDS_DEATH`` at deceasedDateTime
Encounter              ``ENCOUNTER//<kind>`` at period.start and, for inpatient stays,
                       ``DISCHARGE//inpatient`` at period.end; kind from
                       the v3 ActCode class (IMP -> inpatient, EMER -> emergency, AMB ->
                       ambulatory, ...)
Condition              its code at onset (or recordedDate)
Observation            its code at effective time with valueQuantity (unit kept for unit
                       normalisation), one row per component (e.g. blood pressure)
MedicationRequest      the medication's code at authoredOn
MedicationStatement    the medication's code at the effective time (or dateAsserted)
Procedure              its code at the performed time
=====================  ====================================================================

Codes keep their vocabulary (`VOCABULARY_OF_SYSTEM`: ICD-10-CM -> ``ICD10CM//``, LOINC ->
``LOINC//``, ATC, RxNorm, SNOMED CT, ...); a coding from another system keeps the last part
of its system URL as vocabulary. Resources marked entered-in-error, cancelled or refuted, and
resources with no usable code or time, give no rows. Names, identifiers, addresses, telecom
and free text (notes, valueString) never become rows: only codes, times and numbers do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from medsight.ehr.io.event_times import to_naive_utc
from medsight.ehr.io.meds_dataset import BIRTH, DEATH, events_table
from medsight.errors import InputError

#: resource types that become events; others in a file are skipped
RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
)

#: FHIR coding system -> MEDS vocabulary, in order of preference when a concept has several
VOCABULARY_OF_SYSTEM: dict[str, str] = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD9CM",
    "http://loinc.org": "LOINC",
    "http://www.whocc.no/atc": "ATC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://www.ama-assn.org/go/cpt": "CPT4",
    "http://www.cms.gov/Medicare/Coding/ICD10": "ICD10PCS",
    "http://snomed.info/sct": "SNOMED",
}

#: v3 ActCode encounter classes -> the ENCOUNTER//<kind> names MEDS data here uses
ENCOUNTER_KIND: dict[str, str] = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "EMER": "emergency",
    "AMB": "ambulatory",
    "PRENC": "ambulatory",
    "OBSENC": "observation",
    "SS": "short-stay",
    "VR": "virtual",
    "HH": "home",
}
#: only inpatient stays get a DISCHARGE row: discharges are what readmission labels key on
DISCHARGED = frozenset({"inpatient"})

SEX_CODE = {"female": "SEX//F", "male": "SEX//M"}
SKIPPED_STATUS = frozenset({"entered-in-error", "cancelled", "refuted", "not-done"})
_VOCAB_CHARS = re.compile(r"[^A-Za-z0-9]+")

Row = tuple[int, datetime | None, str, float | None, str | None, str | None]


def fhir_model(resource_type: str) -> Any:
    """The ``fhir.resources`` R4B model class of a resource type."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validate_resource(resource: Any, where: str) -> Any:
    """Validate one resource (a dict) against its FHIR model.

    Raises:
        InputError: not a JSON object with a resourceType, or a resource its model rejects
            (names the first bad field, never its value).
    """
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise InputError(f"{where}: not a FHIR resource (a JSON object with a resourceType)")
    rtype = resource["resourceType"]
    try:
        model = fhir_model(rtype)
    except ValueError:
        raise InputError(f"{where}: {rtype!r} is not a FHIR R4 resource type") from None
    try:
        return model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "resource"
        message = " ".join(str(first.get("msg", "invalid")).split())
        raise InputError(f"{where}: invalid FHIR {rtype}: {field}: {message}") from None


def vocabulary_of(system: str) -> str:
    """The MEDS vocabulary of a coding system (the last part of an unknown system's URL)."""
    if system in VOCABULARY_OF_SYSTEM:
        return VOCABULARY_OF_SYSTEM[system]
    tail = [part for part in re.split(r"[/:#]", system.rstrip("/")) if part]
    name = _VOCAB_CHARS.sub("_", tail[-1]).strip("_").upper() if tail else ""
    return name or "FHIR_CODE"


def concept_code(concept: Any) -> str | None:
    """The MEDS code of a CodeableConcept: its coding from the most preferred system."""
    if concept is None:
        return None
    codings = [c for c in (concept.coding or []) if c.code and c.system]
    if not codings:
        return None
    order = list(VOCABULARY_OF_SYSTEM)
    codings.sort(key=lambda c: order.index(c.system) if c.system in order else len(order))
    best = codings[0]
    return f"{vocabulary_of(best.system)}//{best.code.strip()}"


def _reference_key(reference: Any) -> str | None:
    if reference is None or not reference.reference:
        return None
    return str(reference.reference)


def lookup_subject(key: str | None, subject_ids: Mapping[str, int]) -> int | None:
    """The subject_id of a patient key or reference (None when unknown)."""
    if key is None:
        return None
    for candidate in (key, key.removeprefix("Patient/"), key.removeprefix("urn:uuid:")):
        if candidate in subject_ids:
            return subject_ids[candidate]
    return None


def _first_time(*values: Any) -> datetime | None:
    for value in values:
        if value is not None:
            return to_naive_utc(value)
    return None


def _period_start(period: Any) -> Any:
    return period.start if period is not None else None


def resource_rows(model: Any, subject_id: int) -> list[Row]:
    """MEDS rows (plus unit) of one validated resource belonging to ``subject_id``."""
    rtype = model.get_resource_type()
    status = getattr(model, "status", None)
    if status in SKIPPED_STATUS:
        return []
    if rtype == "Patient":
        return _patient_rows(model, subject_id)
    if rtype == "Encounter":
        return _encounter_rows(model, subject_id)
    if rtype == "Condition":
        verification = concept_code(model.verificationStatus) or ""
        if verification.rsplit("//", 1)[-1] in SKIPPED_STATUS:
            return []
        time = _first_time(
            model.onsetDateTime, _period_start(model.onsetPeriod), model.recordedDate
        )
        return _coded_row(subject_id, time, concept_code(model.code))
    if rtype == "Observation":
        return _observation_rows(model, subject_id)
    if rtype == "MedicationRequest":
        return _coded_row(
            subject_id, _first_time(model.authoredOn), concept_code(model.medicationCodeableConcept)
        )
    if rtype == "MedicationStatement":
        time = _first_time(
            model.effectiveDateTime, _period_start(model.effectivePeriod), model.dateAsserted
        )
        return _coded_row(subject_id, time, concept_code(model.medicationCodeableConcept))
    if rtype == "Procedure":
        time = _first_time(model.performedDateTime, _period_start(model.performedPeriod))
        return _coded_row(subject_id, time, concept_code(model.code))
    return []


def _coded_row(subject_id: int, time: datetime | None, code: str | None) -> list[Row]:
    if time is None or code is None:
        return []
    return [(subject_id, time, code, None, None, None)]


def _patient_rows(model: Any, subject_id: int) -> list[Row]:
    rows: list[Row] = []
    birth = _first_time(model.birthDate)
    if birth is not None:
        rows.append((subject_id, birth, BIRTH, None, None, None))
    rows.append((subject_id, None, SEX_CODE.get(model.gender or "", "SEX//UNK"), None, None, None))
    death = _first_time(model.deceasedDateTime)
    if death is not None:
        rows.append((subject_id, death, DEATH, None, None, None))
    return rows


def _encounter_rows(model: Any, subject_id: int) -> list[Row]:
    klass = model.class_fhir
    code = (klass.code or "").strip() if klass is not None else ""
    kind = ENCOUNTER_KIND.get(code.upper(), code.lower() or "unknown")
    period = model.period
    rows: list[Row] = []
    start = _first_time(period.start) if period is not None else None
    end = _first_time(period.end) if period is not None else None
    if start is not None:
        rows.append((subject_id, start, f"ENCOUNTER//{kind}", None, None, None))
    if end is not None and kind in DISCHARGED:
        hosp = model.hospitalization
        disposition = concept_code(hosp.dischargeDisposition) if hosp is not None else None
        rows.append((subject_id, end, f"DISCHARGE//{kind}", None, disposition, None))
    return rows


def _observation_rows(model: Any, subject_id: int) -> list[Row]:
    time = _first_time(
        model.effectiveDateTime,
        _period_start(model.effectivePeriod),
        model.effectiveInstant,
        model.issued,
    )
    if time is None:
        return []
    rows: list[Row] = []
    code = concept_code(model.code)
    value, text, unit = _observation_value(model)
    if code is not None and (value is not None or text is not None or not model.component):
        rows.append((subject_id, time, code, value, text, unit))
    for component in model.component or []:
        component_code = concept_code(component.code)
        if component_code is None:
            continue
        value, text, unit = _observation_value(component)
        rows.append((subject_id, time, component_code, value, text, unit))
    return rows


def _observation_value(holder: Any) -> tuple[float | None, str | None, str | None]:
    quantity = holder.valueQuantity
    if quantity is not None and quantity.value is not None:
        unit = quantity.unit or quantity.code
        return float(quantity.value), None, unit
    if holder.valueCodeableConcept is not None:
        return None, concept_code(holder.valueCodeableConcept), None
    if holder.valueBoolean is not None:
        return float(holder.valueBoolean), None, None
    if holder.valueInteger is not None:
        return float(holder.valueInteger), None, None
    return None, None, None


def subject_key(model: Any) -> str | None:
    """A validated resource's patient: a Patient's id, else its subject reference."""
    if model.get_resource_type() == "Patient":
        return str(model.id) if model.id else None
    return _reference_key(getattr(model, "subject", None))


def rows_table(rows: list[Row], *, units: bool = False) -> pa.Table:
    """MEDS event table of rows (with a ``unit`` column after the MEDS ones when asked)."""
    table = events_table(
        {
            "subject_id": [r[0] for r in rows],
            "time": [r[1] for r in rows],
            "code": [r[2] for r in rows],
            "numeric_value": [r[3] for r in rows],
            "text_value": [r[4] for r in rows],
        }
    )
    if units:
        table = table.append_column("unit", pa.array([r[5] for r in rows], pa.string()))
    return table


def resources_to_events(
    resources: Iterable[dict[str, Any]],
    subject_ids: Mapping[str, int],
    *,
    source: str = "FHIR resources",
    units: bool = False,
    default_subject: int | None = None,
) -> pa.Table:
    """MEDS event rows of FHIR R4 resources, each validated first.

    Args:
        resources: resources as parsed JSON (types outside `RESOURCE_TYPES` are validated and
            skipped).
        subject_ids: patient key -> subject_id; a key is a Patient's id (``"123"``), and a
            reference's target is looked up as written (``Patient/123``, ``urn:uuid:...``),
            then without its ``Patient/`` or ``urn:uuid:`` prefix.
        source: what to call the resources in messages (resource N is 1-based).
        units: add a ``unit`` column (the valueQuantity's unit) for unit normalisation.
        default_subject: the subject of resources with no subject reference (a one-patient
            bundle); without it such resources give no rows.

    Raises:
        InputError: a resource that is not valid FHIR, or one that refers to a patient that
            ``subject_ids`` does not hold.
    """
    rows: list[Row] = []
    for index, resource in enumerate(resources, start=1):
        where = f"{source}: resource {index}"
        model = validate_resource(resource, where)
        if model.get_resource_type() not in RESOURCE_TYPES:
            continue
        key = subject_key(model)
        subject_id = lookup_subject(key, subject_ids)
        if subject_id is None:
            if key is not None:
                raise InputError(f"{where}: refers to a patient with no Patient resource")
            if default_subject is None:
                continue
            subject_id = default_subject
        rows.extend(resource_rows(model, subject_id))
    return rows_table(rows, units=units)


def bundle_patient_events(bundle: Any, subject_id: int = 0, *, units: bool = False) -> pa.Table:
    """MEDS event rows of a FHIR R4 Bundle holding exactly one Patient.

    Every resource in the bundle is validated; resources without a subject belong to the one
    patient; a resource that refers to another patient is refused.

    Args:
        bundle: the parsed Bundle JSON.
        subject_id: the subject_id the rows get.
        units: add a ``unit`` column (see `resources_to_events`).

    Raises:
        InputError: not a FHIR Bundle; a bundle with no or several Patients; an invalid
            resource; a reference to a patient not in the bundle.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError("not a FHIR Bundle (a JSON object with resourceType 'Bundle')")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries
    ):
        raise InputError("FHIR Bundle: every entry must hold a resource object")
    patients = [e for e in entries if e["resource"].get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise InputError(f"bundle holds {len(patients)} patients; send one")
    keys: dict[str, int] = {}
    patient = patients[0]
    if patient["resource"].get("id"):
        keys[str(patient["resource"]["id"])] = subject_id
    if patient.get("fullUrl"):
        keys[str(patient["fullUrl"])] = subject_id
    return resources_to_events(
        (e["resource"] for e in entries),
        keys,
        source="FHIR Bundle",
        units=units,
        default_subject=subject_id,
    )
