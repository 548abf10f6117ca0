"""De-identify one patient's FHIR R4 Bundle (JSON as a dict), before it is stored or logged.

Fail-closed rules, applied to every resource kept:

* only clinical resource types are kept (`KEPT_TYPES`); the Patient keeps only its id,
  sex, birth date and death (`PATIENT_FIELDS`);
* keys that hold identifying data or free text (`DROPPED_KEYS`, and every primitive's
  ``_field`` extension) are removed at any depth; a ``display`` is kept only on a coding
  (vocabulary text), never on a reference (it is often a person's name);
* resource ids, ``fullUrl``s and references are replaced by keyed pseudonyms
  (`resource_ids`); a conditional reference (``Patient?identifier=SYSTEM|VALUE``) to one
  of the bundle patient's own identifiers becomes a reference to the patient, any other
  is removed; element ids are removed;
* every value with day precision or finer (date, dateTime, instant, period bounds) is moved
  by the patient's keyed offset, wherever it is; a date-valued field whose value cannot be
  moved (``2019``, ``2019-04``, or not a date) is removed.

Objects and lists left empty are removed, so a kept reference is never ``{}``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from medsight.ehr.deid.date_shift import is_full_date, shift_fhir_date
from medsight.ehr.deid.deidentified_record import DeidentifiedRecord
from medsight.ehr.deid.patient_keys import PatientKeys, patient_keys
from medsight.ehr.deid.resource_ids import (
    pseudonymous_full_url,
    pseudonymous_id,
    pseudonymous_reference,
)
from medsight.errors import InputError

#: resource types kept: the patient and coded clinical events about them
KEPT_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "MedicationDispense",
        "Medication",
        "Procedure",
        "Immunization",
        "AllergyIntolerance",
        "DiagnosticReport",
    }
)
PATIENT_FIELDS = (
    "resourceType",
    "id",
    "active",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
)
#: removed wherever they appear: identifiers, contact data, free text, extensions, metadata
DROPPED_KEYS = frozenset(
    {
        "identifier",
        "name",
        "telecom",
        "address",
        "photo",
        "contact",
        "communication",
        "generalPractitioner",
        "managingOrganization",
        "link",
        "text",
        "note",
        "comment",
        "description",
        "conclusion",
        "summary",
        "patientInstruction",
        "presentedForm",
        "content",
        "valueString",
        "valueMarkdown",
        "valueAttachment",
        "valueBase64Binary",
        "valueUri",
        "valueUrl",
        "valueId",
        "valueOid",
        "valueUuid",
        "valueCanonical",
        "valueIdentifier",
        "valueHumanName",
        "valueAddress",
        "valueContactPoint",
        "valueSignature",
        "extension",
        "modifierExtension",
        "contained",
        "meta",
        "implicitRules",
        "language",
        "url",
        "signature",
        "qualification",
        "issue",
        "request",
        "response",
        "search",
    }
)
#: fields whose value is a date: removed when it cannot be shifted
_DATE_KEYS = frozenset(
    {
        "date",
        "issued",
        "authoredOn",
        "timestamp",
        "lastUpdated",
        "start",
        "end",
        "recorded",
        "event",
        "dateAsserted",
        "whenHandedOver",
        "whenPrepared",
        "created",
        "birthDate",
    }
)
_DATE_SUFFIXES = ("Date", "DateTime", "Instant")
_SUBJECT_KEYS = ("subject", "patient")
_BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
MAX_DEPTH = 48


def _is_date_key(key: str) -> bool:
    return key in _DATE_KEYS or key.endswith(_DATE_SUFFIXES)


def _identifier_tokens(patient: dict[str, Any]) -> set[str]:
    """``system|value`` and ``value`` of each of the patient's identifiers."""
    tokens = set()
    for item in patient.get("identifier") or []:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            value = item["value"].strip()
            tokens |= {value, f"{item.get('system', '')}|{value}"}
    return tokens


class _Cleaner:
    def __init__(self, key: str, offset_days: int, source: str, patient: dict[str, Any]) -> None:
        self.key = key
        self.offset_days = offset_days
        self.source = source
        self.patient_tokens = _identifier_tokens(patient)
        original_id = patient.get("id")
        self.patient_ref = (
            f"Patient/{pseudonymous_id(key, 'Patient', original_id)}"
            if isinstance(original_id, str)
            else None
        )

    def reference(self, value: Any) -> str | None:
        """A kept reference; a conditional one to the bundle's patient becomes a plain one."""
        if not isinstance(value, str):
            return None
        if value.startswith("Patient?identifier=") and self.patient_ref is not None:
            wanted = value.removeprefix("Patient?identifier=")
            return self.patient_ref if wanted in self.patient_tokens else None
        return pseudonymous_reference(self.key, value)

    def value(self, value: Any, field: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InputError(f"{self.source}: the bundle is nested over {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            return self.element(value, depth + 1)
        if isinstance(value, list):
            items = [self.value(v, field, depth + 1) for v in value]
            return [v for v in items if v not in (None, {}, [])]
        if isinstance(value, str):
            if is_full_date(value):
                return shift_fhir_date(value, self.offset_days)
            return None if _is_date_key(field) else value
        if isinstance(value, bool | int | float):
            return None if _is_date_key(field) else value
        return None

    def element(self, element: dict[str, Any], depth: int) -> dict[str, Any]:
        coding = ("code" in element or "system" in element) and "reference" not in element
        out: dict[str, Any] = {}
        for field, value in element.items():
            if not isinstance(field, str) or field in DROPPED_KEYS or field.startswith("_"):
                continue
            if field == "id" or (field == "display" and not coding):
                continue
            reference = field == "reference"
            new = self.reference(value) if reference else self.value(value, field, depth)
            if new not in (None, {}, []):
                out[field] = new
        return out

    def resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        kind = resource["resourceType"]
        if kind == "Patient":
            resource = {f: resource[f] for f in PATIENT_FIELDS if f in resource}
        body = self.element({k: v for k, v in resource.items() if k != "resourceType"}, 1)
        out: dict[str, Any] = {"resourceType": kind}
        if isinstance(resource.get("id"), str):
            out["id"] = pseudonymous_id(self.key, kind, resource["id"])
        out.update(body)
        return out


def _resources(bundle: Any, source: str) -> list[tuple[str, dict[str, Any]]]:
    """``(fullUrl, resource)`` of every entry; raises InputError when it is not a Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError(f"{source}: not a FHIR R4 Bundle (resourceType must be 'Bundle')")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InputError(f"{source}: Bundle.entry must be a list")
    out = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InputError(f"{source}: entry {i}: no resource with a resourceType")
        full_url = entry.get("fullUrl")
        out.append((full_url if isinstance(full_url, str) else "", resource))
    return out


def _identifier(patient: dict[str, Any], bundle: Any) -> str:
    """The patient's original identifier the keys are derived from (never stored).

    The medical record number when one is marked (``type`` code ``MR``), else the first
    identifier in sorted order, else the Patient's id, else the bundle's content.
    """
    mrns: list[str] = []
    others: list[str] = []
    for item in patient.get("identifier") or []:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            continue
        text = f"{item.get('system', '')}|{item['value'].strip()}"
        kind = item.get("type")
        codings = kind.get("coding") if isinstance(kind, dict) else None
        is_mrn = isinstance(codings, list) and any(
            isinstance(c, dict) and c.get("code") == "MR" for c in codings
        )
        (mrns if is_mrn else others).append(text)
    if mrns or others:
        return "identifier:" + sorted(mrns or others)[0]
    if isinstance(patient.get("id"), str) and patient["id"].strip():
        return "id:" + patient["id"].strip()
    canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"), default=str)
    return "content:" + hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()


def _check_one_patient(entries: list[dict[str, Any]], patient_ref: str, source: str) -> None:
    for i, resource in enumerate(entries):
        for field in _SUBJECT_KEYS:
            target = resource.get(field)
            ref = target.get("reference") if isinstance(target, dict) else None
            if isinstance(ref, str) and ref.startswith("Patient/") and ref != patient_ref:
                raise InputError(
                    f"{source}: entry {i} is about another patient; send one patient per request"
                )


def deidentify_bundle(bundle: Any, key: str, source: str = "bundle") -> DeidentifiedRecord:
    """The de-identified copy of one patient's FHIR R4 Bundle (the input is not changed).

    Args:
        bundle: the parsed JSON.
        key: the service's de-identification secret.
        source: what to call the input in error messages (never patient data).

    Returns:
        The de-identified bundle (``kind`` ``fhir``) with the patient's keyed pseudonym,
        subject id and date offset.

    Raises:
        InputError: not a Bundle, no Patient, several patients, or nested absurdly deep.
    """
    resources = _resources(bundle, source)
    patients = [r for _, r in resources if r["resourceType"] == "Patient"]
    if not patients:
        raise InputError(f"{source}: the bundle holds no Patient resource")
    if len(patients) > 1:
        raise InputError(
            f"{source}: the bundle holds {len(patients)} Patient resources; "
            "send one patient per request"
        )
    keys: PatientKeys = patient_keys(key, _identifier(patients[0], bundle))
    cleaner = _Cleaner(key, keys.offset_days, source, patients[0])
    entries: list[dict[str, Any]] = []
    cleaned: list[dict[str, Any]] = []
    for full_url, resource in resources:
        if resource["resourceType"] not in KEPT_TYPES:
            continue
        clean = cleaner.resource(resource)
        entry: dict[str, Any] = {"resource": clean}
        if full_url:
            entry["fullUrl"] = pseudonymous_full_url(
                key, full_url, clean["resourceType"], str(resource.get("id", ""))
            )
        entries.append(entry)
        cleaned.append(clean)
    patient = next(r for r in cleaned if r["resourceType"] == "Patient")
    if "id" in patient:
        _check_one_patient(cleaned, f"Patient/{patient['id']}", source)
    kind = bundle.get("type")
    out = {
        "resourceType": "Bundle",
        "type": kind if kind in _BUNDLE_TYPES else "collection",
        "entry": entries,
    }
    return DeidentifiedRecord(
        record=out,
        kind="fhir",
        pseudonym=keys.pseudonym,
        subject_id=keys.subject_id,
        offset_days=keys.offset_days,
    )
