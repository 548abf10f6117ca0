"""FHIR R4: one-patient Bundles for the service, Bulk Data NDJSON for the importer."""

from __future__ import annotations

import copy
import json

import polars as pl
import pytest

from medsight.ehr.io.fhir_events import bundle_patient_events
from medsight.ehr.io.importers import import_source
from medsight.errors import InputError

PATIENT = {
    "resourceType": "Patient",
    "id": "pat-b",
    "gender": "female",
    "birthDate": "1950-02-03",
    "name": [{"family": "Canary-Name"}],
    "identifier": [{"value": "MRN-CANARY-1"}],
}
RESOURCES = [
    {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/pat-b"},
        "period": {"start": "2020-01-01T10:00:00+02:00", "end": "2020-01-03T09:00:00Z"},
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/pat-b"},
        "effectiveDateTime": "2020-01-02T10:00:00Z",
        "valueQuantity": {"value": 7.1, "unit": "%"},
    },
    {
        "resourceType": "Condition",
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "44054006"},
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"},
            ]
        },
        "subject": {"reference": "Patient/pat-b"},
        "onsetDateTime": "2019-05-01",
    },
    {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]
        },
        "subject": {"reference": "Patient/pat-b"},
        "authoredOn": "2020-01-02",
    },
]


def bundle(*patients: dict) -> dict:
    entries = [{"fullUrl": f"urn:uuid:{p['id']}", "resource": p} for p in patients]
    entries += [{"resource": r} for r in RESOURCES]
    return copy.deepcopy({"resourceType": "Bundle", "type": "collection", "entry": entries})


def test_bundle_rows_keep_codes_and_no_identifiers():
    table = pl.from_arrow(bundle_patient_events(bundle(PATIENT), subject_id=5))
    assert set(table["subject_id"]) == {5}
    assert set(table["code"]) == {
        "MEDS_BIRTH",
        "SEX//F",
        "ENCOUNTER//inpatient",
        "DISCHARGE//inpatient",
        "LOINC//4548-4",
        "ICD10CM//E11.9",
        "ATC//A10BA02",
    }
    start = table.filter(pl.col("code") == "ENCOUNTER//inpatient")["time"].dt.hour().to_list()
    assert start == [8]  # +02:00 to UTC
    assert "CANARY" not in table.write_csv()


def test_bundle_with_two_patients_is_refused():
    other = dict(PATIENT, id="pat-c")
    with pytest.raises(InputError, match="bundle holds 2 patients; send one"):
        bundle_patient_events(bundle(PATIENT, other))


def test_not_a_bundle_and_invalid_resources_are_one_line():
    with pytest.raises(InputError, match="not a FHIR Bundle"):
        bundle_patient_events({"hello": "world"})
    broken = bundle(PATIENT)
    broken["entry"][1]["resource"]["period"]["start"] = "not a date"
    with pytest.raises(
        InputError, match=r"resource 2: invalid FHIR Encounter: period.start"
    ) as err:
        bundle_patient_events(broken)
    assert "\n" not in str(err.value)


def write_bulk(folder, patients, resources):
    folder.mkdir()
    by_type: dict[str, list[dict]] = {}
    for r in [*patients, *resources]:
        by_type.setdefault(r["resourceType"], []).append(r)
    for name, items in by_type.items():
        (folder / f"{name}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))


def test_bulk_export_imports_with_sorted_subject_ids(tmp_path, read_events, checked):
    other = {"resourceType": "Patient", "id": "pat-a", "gender": "male", "birthDate": "1960"}
    write_bulk(tmp_path / "bulk", [PATIENT, other], RESOURCES)
    summary = import_source(tmp_path / "bulk", tmp_path / "meds", "fhir")
    assert summary == checked(tmp_path / "meds")
    events = read_events(tmp_path / "meds")
    # pat-a < pat-b: subject 1 is the male born 1960, subject 2 has the records
    assert events.filter(pl.col("subject_id") == 1)["code"].sort().to_list() == [
        "MEDS_BIRTH",
        "SEX//M",
    ]
    assert "LOINC//4548-4" in set(events.filter(pl.col("subject_id") == 2)["code"])
    units = pl.read_parquet(tmp_path / "meds" / "metadata" / "codes.parquet")
    assert units.filter(pl.col("code") == "LOINC//4548-4")["unit"].to_list() == ["%"]


def test_a_file_that_is_not_fhir_gets_one_line(tmp_path):
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text('{"name": "not fhir"}\n')
    with pytest.raises(InputError, match=r"Patient.ndjson: line 1: not a FHIR resource"):
        import_source(folder, tmp_path / "meds", "fhir")
    (folder / "Patient.ndjson").write_text("subject_id,time\n1,2020\n")
    with pytest.raises(InputError, match=r"line 1: not FHIR NDJSON"):
        import_source(folder, tmp_path / "meds", "fhir")
    assert not (tmp_path / "meds").exists()


def test_reference_to_a_missing_patient_names_the_line(tmp_path):
    orphan = dict(RESOURCES[1], subject={"reference": "Patient/nobody"})
    write_bulk(tmp_path / "bulk", [PATIENT], [RESOURCES[1], orphan])
    with pytest.raises(InputError, match=r"Observation.ndjson: line 2: refers to a patient"):
        import_source(tmp_path / "bulk", tmp_path / "meds", "fhir")
