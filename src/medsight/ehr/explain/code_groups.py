"""Which row of a clinician's timeline a code belongs on: its group, from its vocabulary.

Codes keep their vocabulary (``LOINC//4548-4``), which says what kind of event they are:
ICD/SNOMED codes are diagnoses, ATC/RxNorm/NDC medications, ENCOUNTER/DISCHARGE visits,
SEX/MEDS_BIRTH the static facts (drawn at the prediction time, which is when they count). LOINC
holds both laboratory tests and vital signs; the vital-sign and home-monitoring LOINC codes
are listed here (blood pressure, heart rate, temperature, respiration, oxygen saturation,
weight, height, BMI, step counts), every other LOINC code is a laboratory result.
"""

from __future__ import annotations

#: timeline rows, top to bottom
GROUPS = (
    "diagnoses",
    "labs",
    "vitals",
    "medications",
    "procedures",
    "encounters",
    "demographics",
    "other",
)

VITAL_LOINC = frozenset(
    {
        "8480-6",  # systolic blood pressure
        "8462-4",  # diastolic blood pressure
        "85354-9",  # blood pressure panel
        "8867-4",  # heart rate
        "8310-5",  # body temperature
        "9279-1",  # respiratory rate
        "59408-5",  # oxygen saturation (pulse oximetry)
        "2708-6",  # oxygen saturation in arterial blood
        "29463-7",  # body weight
        "8302-2",  # body height
        "39156-5",  # body mass index
        "55423-8",  # step count (pedometer)
        "41950-7",  # steps in 24 hours
    }
)

_BY_VOCABULARY = {
    "ICD10CM": "diagnoses",
    "ICD9CM": "diagnoses",
    "ICD10": "diagnoses",
    "ICD9": "diagnoses",
    "SNOMED": "diagnoses",
    "ATC": "medications",
    "RXNORM": "medications",
    "NDC": "medications",
    "ICD10PCS": "procedures",
    "ICD9PROC": "procedures",
    "CPT4": "procedures",
    "ENCOUNTER": "encounters",
    "DISCHARGE": "encounters",
    "VISIT": "encounters",
    "SEX": "demographics",
    "MEDS_BIRTH": "demographics",
    "ETHNICITY": "demographics",
    "RACE": "demographics",
}


def code_group(code: str) -> str:
    """The timeline group of a MEDS code (one of `GROUPS`).

    Vocabularies of source systems without standard codes are grouped by their name:
    ``*_LAB`` (e.g. ``EICU_LAB``) as labs, ``*_MED``/``*_DRUG`` as medications,
    ``*_VITAL`` as vitals.
    """
    vocabulary, _, value = code.partition("//")
    vocabulary = vocabulary.upper()
    if vocabulary == "LOINC":
        return "vitals" if value in VITAL_LOINC else "labs"
    if vocabulary in _BY_VOCABULARY:
        return _BY_VOCABULARY[vocabulary]
    for suffix, group in (
        ("_LAB", "labs"),
        ("_VITAL", "vitals"),
        ("_MED", "medications"),
        ("_DRUG", "medications"),
        ("_DIAGNOSIS", "diagnoses"),
        ("_PROC", "procedures"),
    ):
        if vocabulary.endswith(suffix):
            return group
    return "other"
