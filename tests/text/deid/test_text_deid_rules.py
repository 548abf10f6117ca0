"""The rules find every planted PHI type and leave clinical words alone: hand-written
held-out notes (phrasings the synthetic corpus does not use), both modes."""

from __future__ import annotations

import pytest

from conftest import KEY, GoldNote, parse_marked
from medsight.text.deid.deidentify import deidentify_text
from medsight.text.deid.detect_phi import detect_phi
from medsight.text.deid.phi_span import PHI_TYPES
from medsight.text.evaluate.deid_scores import deid_scores, leaked

#: clinical words that look like PHI to a careless rule: each must survive de-identification
NOT_PHI = [
    "Foley catheter placed",
    "Murphy's sign negative",
    "Will call daughter",
    "May need CT",
    "Bell's palsy",
    "Glasgow Coma Scale 15",
    "BP 128/76",
    "Strength 5/5",
    "Parkinson disease",
    "Jackson-Pratt drain",
    "Fleischner recommendations",
    "Cardiology Clinic",
    "Braden score 14",
    "Lasix 40 mg IV",
    "Stage 3 CKD",
    "Hope you feel better",
]


@pytest.mark.parametrize("mode", ["surrogate", "tag"])
def test_no_gold_phi_string_survives_in_held_out_notes(heldout: list[GoldNote], mode: str) -> None:
    for note in heldout:
        result = deidentify_text(note.text, key=KEY, patient=note.patient, mode=mode)
        # a state code "ID" stands inside the tag "[ID]" of tag mode: no leak
        tags = {t for t in PHI_TYPES if mode == "tag"}
        survivors = [s for s in note.strings() if s not in tags and leaked(s, result.text)]
        assert survivors == [], f"patient {note.patient}: {survivors}"


def test_held_out_recall_per_type_and_precision(heldout: list[GoldNote]) -> None:
    results = [deidentify_text(n.text, key=KEY, patient=n.patient) for n in heldout]
    scores = deid_scores(
        [n.text for n in heldout],
        [[{"start": s, "end": e, "type": t} for s, e, t in n.spans] for n in heldout],
        [[span.as_record() for span in r.spans] for r in results],
        [r.text for r in results],
    )
    assert set(scores["per_type"]) == set(PHI_TYPES)  # the notes plant every type
    assert {t: row["recall"] for t, row in scores["per_type"].items()} == dict.fromkeys(
        PHI_TYPES, 1.0
    )
    assert scores["precision"] >= 0.95 and scores["leaked"] == 0


def test_clinical_look_alikes_are_kept(heldout: list[GoldNote]) -> None:
    for note in heldout:
        out = deidentify_text(note.text, key=KEY, patient=note.patient).text
        for phrase in NOT_PHI:
            if phrase in note.text:
                assert phrase in out, phrase


@pytest.mark.parametrize(
    ("marked", "phi_type"),
    [
        ("Seen by Dr. [[NAME|Okonjo-Whitcombe]] today.", "NAME"),
        ("Patient [[NAME|Zbigniew Krawczyk]] was admitted.", "NAME"),
        ("Name: [[NAME|Halvorsen, Ingeborg]]", "NAME"),
        ("Her son [[NAME|Tobias]] visited.", "NAME"),
        ("[[NAME|Margaret Ellison]] was seen in follow-up.", "NAME"),
        ("[[NAME|Cornelius Abara]], RN", "NAME"),
        ("Admitted [[DATE|2024-03-01]].", "DATE"),
        ("Admitted [[DATE|03/01/2024]].", "DATE"),
        ("Admitted [[DATE|3/1/24]].", "DATE"),
        ("Admitted [[DATE|March 1, 2024]].", "DATE"),
        ("Admitted [[DATE|1 Mar 2024]].", "DATE"),
        ("Last seen [[DATE|Mar 2024]].", "DATE"),
        # MIMIC shifts its dates into 2100-2200: still dates
        ("Seen on [[DATE|03/14/2101]].", "DATE"),
        ("Admitted [[DATE|2150-01-02]].", "DATE"),
        ("Return on the [[DATE|3rd]].", "DATE"),
        ("A [[AGE|92]]-year-old man.", "AGE"),
        ("She is aged [[AGE|95]].", "AGE"),
        ("Age: [[AGE|91]]", "AGE"),
        ("She is [[AGE|93]] and lives alone.", "AGE"),
        ("MRN: [[ID|A7730021]]", "ID"),
        ("Accession number [[ID|20240301778]]", "ID"),
        ("SSN [[ID|123-45-6789]] on file.", "ID"),
        ("Health plan ID: [[ID|HPX-448812]]", "ID"),
        ("Call [[PHONE|(617) 555-0142]].", "PHONE"),
        ("Fax: [[FAX|617-555-0199]]", "FAX"),
        ("Write to [[EMAIL|a.person@example.org]].", "EMAIL"),
        ("See [[URL|www.clinic-portal.example.com/visit]].", "URL"),
        ("Lives at [[ADDRESS|42 Maple Street, Apt 3B]].", "ADDRESS"),
        ("Mail to [[ADDRESS|PO Box 1234]].", "ADDRESS"),
        ("Home: [[ADDRESS|Springfield, IL 62704]]", "ADDRESS"),
        ("She moved from [[LOCATION|Tulsa]] last year.", "LOCATION"),
        ("Originally from [[LOCATION|Millbrook]].", "LOCATION"),
        ("Transferred from [[HOSPITAL|Riverbend Medical Center]].", "HOSPITAL"),
        ("Follow up at [[HOSPITAL|St. Columba's]].", "HOSPITAL"),
        ("Seen at [[HOSPITAL|Ashgrove Clinic]] yesterday.", "HOSPITAL"),
    ],
)
def test_each_phi_shape_is_found_with_its_type(marked: str, phi_type: str) -> None:
    note = parse_marked(marked)
    ((start, end, _),) = note.spans
    spans = [s for s in detect_phi(note.text) if s.start < end and start < s.end]
    assert spans, f"{phi_type} not found"
    assert min(s.start for s in spans) <= start and max(s.end for s in spans) >= end
    assert phi_type in {s.type for s in spans}
    for mode in ("surrogate", "tag"):
        out = deidentify_text(note.text, key=KEY, patient="P", mode=mode).text
        assert not leaked(note.text[start:end], out), mode


@pytest.mark.parametrize("age", ["89", "45", "7"])
def test_ages_up_to_89_are_kept(age: str) -> None:
    text = f"A {age}-year-old woman, age: {age}."
    assert deidentify_text(text, key=KEY).text == text


def test_age_over_89_becomes_90_plus() -> None:
    out = deidentify_text("Mr. X is a 97-year-old man, aged 101.", key=KEY, patient="P").text
    assert "97" not in out and "101" not in out and out.count("90+") == 2


def test_overlapping_detections_merge_into_the_widest_span() -> None:
    text = "Fax: 617-555-0199"
    spans = detect_phi(text, extra_spans=[(5, 8, "ID"), (9, 17, "NAME")])
    assert [(s.start, s.end, s.type) for s in spans] == [(5, 17, "FAX")]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Xiomara reports pain today.", "Xiomara"),
        ("Okonkwo was seen in clinic.", "Okonkwo"),
        ("He denies chest pain.", None),
        ("Nursing reports no events overnight.", None),
        ("Family agrees with the plan.", None),
        ("Metoprolol was held.", None),
    ],
)
def test_an_unlisted_name_before_a_persons_verb(text: str, masked: str | None) -> None:
    out = deidentify_text(text, key=KEY, mode="tag").text
    assert out == (text if masked is None else text.replace(masked, "[NAME]"))
