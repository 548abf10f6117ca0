"""De-identifying one patient's FHIR Bundle: what is removed, replaced, shifted and kept."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from deid_canary_bundle import BIRTH, CANARIES, KEY, MRN, bundle

from medsight.ehr.deid import deidentify_bundle
from medsight.ehr.io.fhir_events import bundle_patient_events
from medsight.errors import InputError


def _by_type(record: dict) -> dict[str, dict]:
    return {e["resource"]["resourceType"]: e["resource"] for e in record["entry"]}


def test_identifiers_and_free_text_are_gone(canary_bundle: dict) -> None:
    original = copy.deepcopy(canary_bundle)
    clean = deidentify_bundle(canary_bundle, KEY)
    text = json.dumps(clean.record).lower()
    assert [c for c in CANARIES if c.lower() in text] == []
    assert canary_bundle == original  # the input is not changed
    kept = _by_type(clean.record)
    assert set(kept) == {"Patient", "Observation", "Encounter", "Condition"}
    assert set(kept["Patient"]) == {"resourceType", "id", "gender", "birthDate"}
    # coding displays (vocabulary text) stay; reference displays (names) do not
    assert kept["Observation"]["code"] == {
        "coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}]
    }
    assert kept["Observation"]["performer"][0].keys() == {"reference"}
    assert kept["Observation"]["valueQuantity"] == {"value": 8.4, "unit": "%"}
    assert "request" not in json.dumps(clean.record)


def test_dates_move_by_one_keyed_offset_and_keep_their_form(canary_bundle: dict) -> None:
    clean = deidentify_bundle(canary_bundle, KEY)
    days = clean.offset_days
    assert 30 <= abs(days) <= 365
    kept = _by_type(clean.record)

    def moved(value: str) -> str:
        date = dt.date.fromisoformat(value[:10]) + dt.timedelta(days=days)
        return date.isoformat() + value[10:]

    assert kept["Patient"]["birthDate"] == moved(BIRTH)
    assert kept["Observation"]["effectiveDateTime"] == moved("2020-01-20T10:15:00+01:00")
    assert kept["Observation"]["issued"] == moved("2020-01-21T08:00:00.123Z")
    assert kept["Encounter"]["period"] == {
        "start": moved("2020-01-19"),
        "end": moved("2020-01-25T12:00:00Z"),
    }
    # year or year-month dates cannot be moved by days: removed, never kept as they were
    assert "onsetDateTime" not in kept["Condition"] and "recordedDate" not in kept["Condition"]


def test_the_same_patient_gets_the_same_keys_and_another_does_not() -> None:
    a, b = deidentify_bundle(bundle(), KEY), deidentify_bundle(bundle(), KEY)
    assert (a.pseudonym, a.subject_id, a.offset_days) == (b.pseudonym, b.subject_id, b.offset_days)
    assert a.sha256() == b.sha256()
    other = deidentify_bundle(bundle(mrn="OTHER-MRN-2"), KEY)
    assert other.pseudonym != a.pseudonym and other.subject_id != a.subject_id
    rekeyed = deidentify_bundle(bundle(), KEY[::-1])
    assert rekeyed.pseudonym != a.pseudonym
    # the MRN (type MR) is the identifier, not the first one listed
    reordered = bundle()
    reordered["entry"][0]["resource"]["identifier"].reverse()
    assert deidentify_bundle(reordered, KEY).pseudonym == a.pseudonym
    assert MRN not in a.pseudonym


def test_offsets_spread_over_both_directions() -> None:
    offsets = [deidentify_bundle(bundle(mrn=f"M{i}"), KEY).offset_days for i in range(200)]
    assert all(30 <= abs(d) <= 365 for d in offsets)
    assert 60 < sum(d > 0 for d in offsets) < 140
    assert len(set(offsets)) > 100


def test_links_inside_the_bundle_survive(canary_bundle: dict) -> None:
    clean = deidentify_bundle(canary_bundle, KEY)
    entries = clean.record["entry"]
    kept = _by_type(clean.record)
    patient_id = kept["Patient"]["id"]
    assert patient_id != "p1"
    assert kept["Observation"]["subject"] == {"reference": f"Patient/{patient_id}"}
    encounter_url = next(e["fullUrl"] for e in entries if e["resource"] is kept["Encounter"])
    assert kept["Observation"]["encounter"] == {"reference": encounter_url}
    # a conditional reference to the patient's own MRN links to the patient; another, removed
    assert kept["Condition"]["subject"] == {"reference": f"Patient/{patient_id}"}
    canary_bundle["entry"][3]["resource"]["subject"] = {"reference": "Patient?identifier=x|9"}
    assert "subject" not in _by_type(deidentify_bundle(canary_bundle, KEY).record)["Condition"]


def test_the_de_identified_bundle_still_converts_to_meds_rows(canary_bundle: dict) -> None:
    clean = deidentify_bundle(canary_bundle, KEY)
    rows = bundle_patient_events(clean.record, clean.subject_id).to_pylist()
    codes = {r["code"] for r in rows}
    assert {"MEDS_BIRTH", "SEX//F", "LOINC//4548-4"} <= codes
    birth = next(r["time"] for r in rows if r["code"] == "MEDS_BIRTH")
    assert birth == dt.datetime.fromisoformat(BIRTH) + dt.timedelta(days=clean.offset_days)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"resourceType": "Patient"}, "not a FHIR R4 Bundle"),
        ([], "not a FHIR R4 Bundle"),
        ({"resourceType": "Bundle", "entry": {}}, "entry must be a list"),
        ({"resourceType": "Bundle", "entry": [{"resource": 3}]}, "entry 0"),
        ({"resourceType": "Bundle", "entry": []}, "no Patient"),
    ],
)
def test_what_is_not_one_patients_bundle_is_refused(body: object, says: str) -> None:
    with pytest.raises(InputError, match=says):
        deidentify_bundle(body, KEY)


def test_several_patients_are_refused_without_naming_them() -> None:
    two = bundle()
    two["entry"].append({"resource": {"resourceType": "Patient", "id": "p2"}})
    with pytest.raises(InputError, match="2 Patient resources") as exc:
        deidentify_bundle(two, KEY)
    assert MRN not in str(exc.value)
    # one Patient, but an observation about another
    other = bundle()
    other["entry"][1]["resource"]["subject"] = {"reference": "Patient/p2"}
    with pytest.raises(InputError, match="another patient"):
        deidentify_bundle(other, KEY)


def test_absurd_nesting_is_refused() -> None:
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["valueCodeableConcept"] = {}
        node = node["valueCodeableConcept"]
    b = bundle()
    b["entry"][1]["resource"]["component"] = [deep]
    with pytest.raises(InputError, match="nested"):
        deidentify_bundle(b, KEY)


def test_a_short_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        deidentify_bundle(bundle(), "short")
