"""Discharge summaries for synthetic diabetes patients, with PHI planted at known spans.

Each summary is an admission of a patient (a plain dict ``subject_id, sex, age`` from the
EHR cohort, or invented) for one of six reasons (pneumonia, ketoacidosis, foot cellulitis,
heart failure, chest pain, hypoglycaemia), written in the usual sections (history of present
illness, past medical, family and social history, hospital course, discharge diagnoses,
medications, allergies, instructions, follow-up). Every PHI type of the de-identification
(``NAME, DATE, AGE, ID, PHONE, FAX, EMAIL, URL, ADDRESS, LOCATION, HOSPITAL``) is planted
in every summary, in varying formats; ``phi`` lists their spans. AGE follows HIPAA's Safe
Harbor: an age over 89 is PHI (an AGE span), a younger age is not (so only the summaries of
patients over 89 have AGE spans; one invented patient in five is). A street line and a ZIP
code are ADDRESS, a city LOCATION; a state abbreviation is not PHI.

Gold entities follow `chest_ct_reports`' rules; in addition, conditions listed under past
medical history are ``historical``, discharge diagnoses ``recent``, symptoms the patient
"denies" or that were "ruled out" negated, instructions' "return if you develop ..."
hypothetical and relatives' conditions ``experiencer: other``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medsight.text.synth import phi_values as pv
from medsight.text.synth.date_formats import format_date
from medsight.text.synth.document_builder import (
    DocumentBuilder,
    GeneratedNote,
    Mention,
    Phi,
    Piece,
)


@dataclass(frozen=True)
class DischargePatient:
    """Who a discharge summary is about: ``subject_id``, ``sex`` (F/M), ``age`` in years."""

    subject_id: str
    sex: str
    age: int

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> DischargePatient:
        """Read a patient dict.

        Raises:
            ValueError: a missing ``subject_id`` or an age outside 0-120, naming the patient.
        """
        subject = str(row.get("subject_id") or "")
        if not subject:
            raise ValueError("patient: missing subject_id")
        age = int(row.get("age", 60))
        if not 0 <= age <= 120:
            raise ValueError(f"patient {subject}: age must be 0-120")
        sex = str(row.get("sex") or "F").upper()[:1]
        return cls(subject, "F" if sex == "F" else "M", age)


def invented_patients(n: int, rng: random.Random) -> list[DischargePatient]:
    """``n`` patients when none are given: ages 35-99, one in five over 89."""
    return [
        DischargePatient(
            f"EHR{i + 1:05d}",
            rng.choice("FM"),
            rng.randrange(90, 100) if rng.random() < 0.2 else rng.randrange(35, 90),
        )
        for i in range(n)
    ]


def _finding(text: str, concept: str | None = None, **context: Any) -> Mention:
    return Mention(text, "finding", concept or text.lower(), **context)


def _medication(text: str) -> Mention:
    return Mention(text, "medication", text.lower())


def _procedure(text: str, **context: Any) -> Mention:
    return Mention(text, "procedure", text.lower(), **context)


#: reason -> (presenting finding text, concept, symptoms, denied symptoms, procedure,
#: inpatient medications, uncertain consideration)
_REASONS: dict[str, dict[str, Any]] = {
    "pneumonia": {
        "problem": ("community-acquired pneumonia", "pneumonia"),
        "symptoms": ("fever", "productive cough"),
        "denied": ("chest pain", "hemoptysis"),
        "procedure": "chest radiograph",
        "drugs": ("ceftriaxone", "azithromycin"),
        "uncertain": "pleural effusion",
    },
    "dka": {
        "problem": ("diabetic ketoacidosis", None),
        "symptoms": ("polyuria", "vomiting"),
        "denied": ("abdominal pain", "fever"),
        "procedure": "arterial blood gas",
        "drugs": ("insulin infusion", "potassium chloride"),
        "uncertain": "urinary tract infection",
    },
    "cellulitis": {
        "problem": ("cellulitis of the left foot", "cellulitis"),
        "symptoms": ("foot swelling", "erythema"),
        "denied": ("fever", "chills"),
        "procedure": "debridement",
        "drugs": ("vancomycin", "cefazolin"),
        "uncertain": "osteomyelitis",
    },
    "heart_failure": {
        "problem": ("acute on chronic heart failure", "heart failure"),
        "symptoms": ("shortness of breath", "leg edema"),
        "denied": ("chest pain", "syncope"),
        "procedure": "echocardiogram",
        "drugs": ("furosemide", "metoprolol"),
        "uncertain": "pneumonia",
    },
    "chest_pain": {
        "problem": ("chest pain", None),
        "symptoms": ("chest pressure", "diaphoresis"),
        "denied": ("shortness of breath", "palpitations"),
        "procedure": "stress test",
        "drugs": ("aspirin", "heparin"),
        "uncertain": "unstable angina",
    },
    "hypoglycemia": {
        "problem": ("hypoglycemia", None),
        "symptoms": ("confusion", "sweating"),
        "denied": ("seizure", "head injury"),
        "procedure": "head CT",
        "drugs": ("dextrose", "glucagon"),
        "uncertain": "adrenal insufficiency",
    },
}
_HISTORY = (
    "type 2 diabetes mellitus",
    "hypertension",
    "hyperlipidemia",
    "chronic kidney disease",
    "diabetic retinopathy",
    "peripheral neuropathy",
    "obesity",
    "coronary artery disease",
)
_HOME_DRUGS = (
    ("Metformin", "1000 mg by mouth twice daily"),
    ("Insulin glargine", "20 units at bedtime"),
    ("Lisinopril", "10 mg daily"),
    ("Atorvastatin", "40 mg nightly"),
    ("Empagliflozin", "10 mg daily"),
    ("Amlodipine", "5 mg daily"),
    ("Aspirin", "81 mg daily"),
    ("Gabapentin", "300 mg three times daily"),
)
_RELATIVES = (
    "Mother",
    "Father",
    "Brother",
    "Sister",
    "Maternal aunt",
    "Paternal uncle",
    "Grandmother",
    "Grandfather",
)
_RELATIVE_CONDITIONS = (
    "breast cancer",
    "myocardial infarction",
    "type 2 diabetes mellitus",
    "stroke",
    "colon cancer",
    "hypertension",
    "lung cancer",
    "dementia",
)
_RELATIVE_VERBS = (" had ", " with ", " died of ", " was diagnosed with ")
_RETURN_IF = (
    "Return to the emergency department if you develop ",
    "Call your doctor if you have ",
    "Seek urgent care for any ",
    "Come back to the hospital if you notice ",
)


def discharge_summaries(
    patients: Sequence[DischargePatient], seed: int, typo_rate: float = 0.01
) -> Iterator[GeneratedNote]:
    """One summary per patient (the design's ``discharge.jsonl`` lines), in patient order."""
    for number, patient in enumerate(patients, 1):
        rng = random.Random(f"{seed}:discharge:{patient.subject_id}")
        yield _summary(number, patient, rng, typo_rate)


def _age(age: int) -> Piece:
    """An age: PHI (AGE) over 89, plain text otherwise (HIPAA Safe Harbor)."""
    return Phi(str(age), "AGE") if age > 89 else str(age)


def _age_text(age: int, rng: random.Random) -> tuple[str, str, str]:
    """(before, age, after) around the AGE span: '72-year-old', '72 y/o', 'aged 72'."""
    return rng.choice(
        (
            ("a ", str(age), "-year-old"),
            ("a ", str(age), " y/o"),
            ("aged ", str(age), ""),
            ("a ", str(age), " year old"),
        )
    )


def _summary(
    number: int, patient: DischargePatient, rng: random.Random, typo_rate: float
) -> GeneratedNote:
    b = DocumentBuilder(rng, typo_rate if rng.random() < 0.6 else 0.0)
    me = pv.person(rng, patient.sex)
    doctor, pcp = pv.person(rng), pv.person(rng)
    relation = rng.choice(pv.RELATIONS[rng.choice("FM")])
    relative = pv.person(rng, "F" if relation in ("daughter", "sister", "mother") else "M")
    hospital = rng.choice(pv.HOSPITALS)
    city, state = rng.choice(pv.CITIES)
    admitted = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2000))
    discharged = admitted + dt.timedelta(days=rng.randrange(2, 9))
    follow = discharged + dt.timedelta(days=rng.randrange(7, 30))
    birth = admitted - dt.timedelta(days=int(patient.age * 365.25) + rng.randrange(300))
    reason_key = rng.choice(sorted(_REASONS))
    reason = _REASONS[reason_key]
    he, his = ("She", "Her") if patient.sex == "F" else ("He", "His")
    title = "Ms." if patient.sex == "F" else "Mr."

    # -- header ------------------------------------------------------------------------
    b.write(Phi(hospital, "HOSPITAL"), "\n")
    b.text(rng.choice(("DISCHARGE SUMMARY", "Discharge Summary")) + "\n\n", typos=False)
    if rng.random() < 0.5:
        b.write("Patient: ", Phi(me.family, "NAME"), ", ", Phi(me.given, "NAME"))
    else:
        b.write("Patient name: ", Phi(f"{me.given} {me.family}", "NAME"))
    b.write("    MRN: ", Phi(pv.mrn(rng), "ID"), "\n")
    b.write(rng.choice(("Account: ", "Acct #: ", "Plan ID: ")), Phi(pv.account(rng), "ID"))
    if rng.random() < 0.5:
        b.write("    SSN: ", Phi(pv.ssn_like(rng), "ID"))
    b.write("\n")
    b.write(
        "Date of birth: ",
        Phi(format_date(birth, rng), "DATE"),
        "    Age: ",
        _age(patient.age),
        "    Sex: ",
        patient.sex,
        "\n",
    )
    b.write(
        "Admission date: ",
        Phi(format_date(admitted, rng), "DATE"),
        "    Discharge date: ",
        Phi(format_date(discharged, rng), "DATE"),
        "\n",
    )
    b.write("Attending: ", "Dr. ", Phi(f"{doctor.given} {doctor.family}", "NAME"), "\n\n")

    # -- history of present illness -------------------------------------------------------
    b.text(
        rng.choice(("HISTORY OF PRESENT ILLNESS:", "HPI:", "History of present illness:")) + "\n",
        typos=False,
    )
    before, age, after = _age_text(patient.age, rng)
    chronic = rng.sample(_HISTORY[1:], 2)
    b.sentence(
        title,
        " ",
        Phi(me.family, "NAME"),
        f" is {before}",
        _age(int(age)),
        f"{after} {'woman' if patient.sex == 'F' else 'man'} with a history of ",
        _finding("type 2 diabetes mellitus", temporality="historical"),
        " and ",
        _finding(chronic[0], temporality="historical"),
        " who presented to ",
        Phi(hospital, "HOSPITAL"),
        " on ",
        Phi(format_date(admitted, rng), "DATE"),
        " with ",
        _finding(reason["symptoms"][0]),
        " and ",
        _finding(reason["symptoms"][1]),
        ".",
    )
    b.text(" ")
    b.sentence(
        he,
        rng.choice((" denies ", " denied ")),
        _finding(reason["denied"][0], negation="negated"),
        " or ",
        _finding(reason["denied"][1], negation="negated"),
        ".",
    )
    if rng.random() < 0.5:
        b.text(" ")
        b.sentence(
            he,
            " was transferred from ",
            Phi(rng.choice(pv.HOSPITALS), "HOSPITAL"),
            " in ",
            Phi(rng.choice(pv.CITIES)[0], "LOCATION"),
            ".",
        )
    b.text("\n\n")

    # -- past medical / family / social history ---------------------------------------------
    b.text(
        rng.choice(("PAST MEDICAL HISTORY:", "Past medical history:", "PMH:")) + "\n", typos=False
    )
    for i, condition in enumerate(["type 2 diabetes mellitus", *chronic], 1):
        b.text(f"{i}. ", typos=False)
        b.sentence(
            _finding(condition[0].upper() + condition[1:], condition, temporality="historical")
        )
        b.text("\n", typos=False)
    b.text("\n" + rng.choice(("FAMILY HISTORY:", "Family history:")) + " ", typos=False)
    b.sentence(
        rng.choice(_RELATIVES),
        rng.choice(_RELATIVE_VERBS),
        _finding(rng.choice(_RELATIVE_CONDITIONS), experiencer="other"),
        ".",
    )
    b.text("\n\n" + rng.choice(("SOCIAL HISTORY:", "Social history:")) + " ", typos=False)
    b.sentence(
        "Lives with ",
        his.lower(),
        f" {relation} ",
        Phi(relative.given, "NAME"),
        " at ",
        Phi(pv.street(rng), "ADDRESS"),
        ", ",
        Phi(city, "LOCATION"),
        f", {state} ",
        Phi(f"{rng.randrange(10000, 99999)}", "ADDRESS"),
        ".",
    )
    b.text(" ")
    b.sentence(
        rng.choice(
            ("Former smoker, quit 10 years ago.", "Never smoker.", "Drinks alcohol socially.")
        )
    )
    b.text(" ")
    b.sentence(his, f" {relation} can be reached at ", Phi(pv.phone(rng), "PHONE"), ".")
    b.text("\n\n")

    # -- hospital course ------------------------------------------------------------------
    b.text(
        rng.choice(("HOSPITAL COURSE:", "Hospital course:", "BRIEF HOSPITAL COURSE:")) + "\n",
        typos=False,
    )
    problem_text, problem_concept = reason["problem"]
    drug1, drug2 = reason["drugs"]
    b.sentence(
        he,
        " was admitted for ",
        _finding(problem_text, problem_concept),
        " and treated with ",
        _medication(drug1),
        " and ",
        _medication(drug2),
        ".",
    )
    b.text(" ")
    if reason_key == "chest_pain":
        b.sentence(
            _finding("Myocardial infarction", "myocardial infarction", negation="negated"),
            " was ruled out with serial troponins.",
        )
        b.text(" ")
    b.sentence(
        "A ",
        _procedure(reason["procedure"]),
        " was performed on ",
        Phi(format_date(admitted + dt.timedelta(days=1), rng), "DATE"),
        ".",
    )
    b.text(" ")
    b.sentence(
        rng.choice(
            (
                "There was initial concern for possible ",
                "Cannot exclude ",
                "Findings were equivocal for ",
            )
        ),
        _finding(reason["uncertain"], certainty="uncertain"),
        rng.choice((", to be reassessed at follow-up.", ".", "; no treatment was started.")),
    )
    if rng.random() < 0.5:
        b.text(" ")
        b.sentence(
            "A ",
            _procedure("chest CT"),
            " (accession ",
            Phi(pv.accession(rng), "ID"),
            ") showed no ",
            _finding("pleural effusion", "pleural_effusion", negation="negated"),
            ".",
        )
    b.text("\n\n")

    # -- diagnoses, medications, allergies ---------------------------------------------------
    b.text(
        rng.choice(("DISCHARGE DIAGNOSES:", "Discharge diagnoses:", "DIAGNOSES:")) + "\n",
        typos=False,
    )
    for i, (text, concept) in enumerate(
        [(problem_text, problem_concept), ("type 2 diabetes mellitus", None)], 1
    ):
        b.text(f"{i}. ", typos=False)
        b.sentence(_finding(text[0].upper() + text[1:], concept or text))
        b.text("\n", typos=False)
    b.text(
        "\n" + rng.choice(("DISCHARGE MEDICATIONS:", "Medications on discharge:")) + "\n",
        typos=False,
    )
    for i, (drug, dose) in enumerate(rng.sample(_HOME_DRUGS, rng.randint(2, 4)), 1):
        b.text(f"{i}. ", typos=False)
        b.sentence(_medication(drug), f" {dose}")
        b.text("\n", typos=False)
    b.text("\n" + rng.choice(("ALLERGIES:", "Allergies:")) + " ", typos=False)
    if rng.random() < 0.5:
        b.sentence("No known drug allergies.")
    else:
        b.sentence(_medication(rng.choice(("Penicillin", "Sulfa", "Codeine"))), " (rash).")
    b.text("\n\n")

    # -- instructions and follow-up -------------------------------------------------------------
    b.text(rng.choice(("DISCHARGE INSTRUCTIONS:", "Discharge instructions:")) + "\n", typos=False)
    b.sentence(
        rng.choice(_RETURN_IF),
        _finding(reason["denied"][0], temporality="hypothetical"),
        " or ",
        _finding(
            "fever" if reason["denied"][0] != "fever" else "chills", temporality="hypothetical"
        ),
        ".",
    )
    b.text(" ")
    b.sentence("Check your blood sugar before meals.")
    b.text("\n\n" + rng.choice(("FOLLOW UP:", "Follow-up:")) + "\n", typos=False)
    b.sentence(
        "Follow up with Dr. ",
        Phi(pcp.family, "NAME"),
        " at ",
        Phi(rng.choice(pv.HOSPITALS), "HOSPITAL"),
        " on ",
        Phi(format_date(follow, rng), "DATE"),
        ".",
    )
    b.text(" ")
    b.sentence(
        "Clinic phone ", Phi(pv.phone(rng), "PHONE"), ", fax ", Phi(pv.phone(rng), "FAX"), "."
    )
    b.text(" ")
    b.sentence(
        "Results will be posted at ",
        Phi(pv.url(hospital, rng), "URL"),
        "; questions to ",
        Phi(pv.email(pcp, rng), "EMAIL"),
        ".",
    )
    b.text("\n\n")
    b.write(
        "Electronically signed by ",
        Phi(f"{doctor.given[0]}. {doctor.family}", "NAME"),
        ", MD on ",
        Phi(format_date(discharged, rng), "DATE"),
        "\n",
    )
    text = b.build()
    signed = dt.datetime.combine(discharged, dt.time(rng.randrange(8, 20), rng.randrange(60)))
    record = {
        "note_id": f"dis_{number:05d}",
        "subject_id": patient.subject_id,
        "time": signed.isoformat(),
        "kind": "discharge",
        "text": text,
        "phi": b.phi,
        "entities": [e.to_json() for e in b.entities],
        "category": "discharge",
    }
    return GeneratedNote(record, b.sentences)
