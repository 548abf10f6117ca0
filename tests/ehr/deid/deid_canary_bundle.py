"""A patient's FHIR R4 Bundle with identifiers and free text in every place FHIR allows them."""

from __future__ import annotations

KEY = "test-key-" + "0123456789abcdef" * 2
NAME, MRN, PHONE, STREET = "Canarypatient", "CANARY-MRN-1", "+44 7700 900731", "77 Canary Lane"
NOTE = "Canarynote about the patient's cat"
BIRTH = "1951-06-13"
DOCTOR = "Dr Canarydoctor"
CANARIES = (NAME, MRN, PHONE, STREET, NOTE, BIRTH, DOCTOR, "Canarydata")


def bundle(mrn: str = MRN) -> dict:
    subject = {"reference": "Patient/p1", "display": NAME}
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2021-01-01T00:00:00Z"},
        "text": {"status": "generated", "div": f"<div>{NAME}</div>"},
        "identifier": [
            {"system": "urn:ssn", "value": "000-00-" + mrn},
            {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": mrn},
        ],
        "name": [{"family": NAME}],
        "telecom": [{"system": "phone", "value": PHONE}],
        "address": [{"line": [STREET]}],
        "photo": [{"data": "Q2FuYXJ5ZGF0YQ=="}],
        "contact": [{"name": {"text": DOCTOR}}],
        "extension": [{"url": "http://x", "valueString": NOTE}],
        "gender": "female",
        "birthDate": BIRTH,
        "_birthDate": {"extension": [{"url": "x", "valueString": NOTE}]},
        "maritalStatus": {"text": NOTE},
    }
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}],
            "text": NOTE,
        },
        "subject": subject,
        "encounter": {"reference": "urn:uuid:6d1c3b3e-0000-4000-8000-000000000001"},
        "effectiveDateTime": "2020-01-20T10:15:00+01:00",
        "issued": "2020-01-21T08:00:00.123Z",
        "valueQuantity": {"value": 8.4, "unit": "%"},
        "note": [{"text": NOTE, "authorString": DOCTOR}],
        "performer": [{"reference": "Practitioner/d1", "display": DOCTOR}],
        "referenceRange": [{"text": NOTE}],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "IMP", "display": "inpatient encounter"},
        "subject": subject,
        "period": {"start": "2020-01-19", "end": "2020-01-25T12:00:00Z"},
        "location": [{"location": {"reference": "Location/l1", "display": STREET}}],
        "reasonCode": [{"text": NOTE}],
    }
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
        "subject": {"reference": f"Patient?identifier=urn:mrn|{mrn}"},
        "onsetDateTime": "2015",
        "recordedDate": "2015-05",
    }
    others = [
        {"resourceType": "Practitioner", "id": "d1", "name": [{"text": DOCTOR}]},
        {"resourceType": "Location", "id": "l1", "address": {"line": [STREET]}},
        {"resourceType": "DocumentReference", "id": "n1", "description": NOTE},
    ]
    resources = [patient, observation, encounter, condition, *others]
    entries = [
        {"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r['id']}", "resource": r}
        for r in resources
    ]
    entries[2]["fullUrl"] = "urn:uuid:6d1c3b3e-0000-4000-8000-000000000001"
    entries[2]["request"] = {"method": "PUT", "url": f"Encounter?identifier={mrn}"}
    return {
        "resourceType": "Bundle",
        "id": mrn,
        "identifier": {"value": mrn},
        "type": "transaction",
        "timestamp": "2021-02-02T12:00:00Z",
        "entry": entries,
    }
