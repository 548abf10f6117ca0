"""The code catalogue of the synthetic diabetes cohort: every code it writes, with its
description, unit (as written to ``metadata/codes.parquet``), UCUM unit (FHIR) and the
decimals its values are rounded to.

Codes keep their vocabulary (``ICD10CM//E11.9``, ``LOINC//4548-4``, ``ATC//A10BA02``). Site B
reports glucose and creatinine in SI units under their own LOINC codes (``LOINC//14749-6``
mmol/L, ``LOINC//14682-9`` umol/L), as two real hospitals would.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    """One code of the catalogue.

    Attributes:
        code: the MEDS code, ``VOCAB//value`` (or a ``MEDS_*`` code).
        description: the code's display text.
        unit: the unit of its numeric values as people write it (None: no values).
        ucum: the same unit in UCUM (FHIR ``valueQuantity.code``).
        decimals: values are rounded to this many decimals.
    """

    code: str
    description: str
    unit: str | None = None
    ucum: str | None = None
    decimals: int = 0

    @property
    def vocabulary(self) -> str:
        """The part before ``//`` (``MEDS_BIRTH`` for MEDS's own codes)."""
        return self.code.partition("//")[0]

    @property
    def value(self) -> str:
        """The part after ``//`` (the code within its vocabulary)."""
        return self.code.partition("//")[2]


CODES: tuple[CodeInfo, ...] = (
    # MEDS's own and static codes
    CodeInfo("MEDS_BIRTH", "Birth"),
    CodeInfo("MEDS_DEATH", "Death"),
    CodeInfo("SEX//F", "Female"),
    CodeInfo("SEX//M", "Male"),
    # encounters
    CodeInfo("ENCOUNTER//ambulatory", "Outpatient visit"),
    CodeInfo("ENCOUNTER//emergency", "Emergency department visit"),
    CodeInfo("ENCOUNTER//inpatient", "Hospital admission"),
    CodeInfo("DISCHARGE//home", "Discharged home"),
    # diagnoses (ICD-10-CM)
    CodeInfo("ICD10CM//E11.9", "Type 2 diabetes mellitus without complications"),
    CodeInfo("ICD10CM//E11.65", "Type 2 diabetes mellitus with hyperglycemia"),
    CodeInfo("ICD10CM//E11.649", "Type 2 diabetes mellitus with hypoglycemia without coma"),
    CodeInfo("ICD10CM//E11.40", "Type 2 diabetes mellitus with diabetic neuropathy, unspecified"),
    CodeInfo("ICD10CM//I10", "Essential (primary) hypertension"),
    CodeInfo("ICD10CM//E78.5", "Hyperlipidemia, unspecified"),
    CodeInfo("ICD10CM//E66.9", "Obesity, unspecified"),
    CodeInfo("ICD10CM//N18.30", "Chronic kidney disease, stage 3 unspecified"),
    CodeInfo("ICD10CM//N18.4", "Chronic kidney disease, stage 4 (severe)"),
    CodeInfo("ICD10CM//Z79.4", "Long term (current) use of insulin"),
    CodeInfo("ICD10CM//Z79.84", "Long term (current) use of oral hypoglycemic drugs"),
    CodeInfo("ICD10CM//I50.9", "Heart failure, unspecified"),
    CodeInfo("ICD10CM//J18.9", "Pneumonia, unspecified organism"),
    CodeInfo("ICD10CM//N17.9", "Acute kidney failure, unspecified"),
    CodeInfo("ICD10CM//L03.115", "Cellulitis of right lower limb"),
    CodeInfo("ICD10CM//R07.9", "Chest pain, unspecified"),
    CodeInfo("ICD10CM//J06.9", "Acute upper respiratory infection, unspecified"),
    # the outcome codes (major complications)
    CodeInfo("ICD10CM//E11.21", "Type 2 diabetes mellitus with diabetic nephropathy"),
    CodeInfo(
        "ICD10CM//E11.319",
        "Type 2 diabetes mellitus with unspecified diabetic retinopathy without macular edema",
    ),
    CodeInfo(
        "ICD10CM//E11.3293",
        "Type 2 diabetes mellitus with mild nonproliferative diabetic retinopathy without "
        "macular edema, bilateral",
    ),
    CodeInfo("ICD10CM//I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    CodeInfo(
        "ICD10CM//I21.19",
        "ST elevation (STEMI) myocardial infarction involving other coronary artery of "
        "inferior wall",
    ),
    CodeInfo("ICD10CM//I63.9", "Cerebral infarction, unspecified"),
    CodeInfo(
        "ICD10CM//I63.50",
        "Cerebral infarction due to unspecified occlusion or stenosis of unspecified cerebral "
        "artery",
    ),
    CodeInfo("ICD10CM//Z89.411", "Acquired absence of right great toe"),
    CodeInfo("ICD10CM//Z89.421", "Acquired absence of other right toe(s)"),
    # laboratory results (LOINC)
    CodeInfo("LOINC//4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%", 1),
    CodeInfo("LOINC//2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 0),
    CodeInfo("LOINC//14749-6", "Glucose [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", 1),
    CodeInfo("LOINC//2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL", 2),
    CodeInfo(
        "LOINC//14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", "umol/L", 0
    ),
    CodeInfo(
        "LOINC//33914-3",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma "
        "by Creatinine-based formula",
        "mL/min/1.73m2",
        "mL/min/{1.73_m2}",
        0,
    ),
    CodeInfo(
        "LOINC//13457-7",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        "mg/dL",
        "mg/dL",
        0,
    ),
    CodeInfo("LOINC//9318-7", "Albumin/Creatinine [Mass Ratio] in Urine", "mg/g", "mg/g", 1),
    # vital signs and home monitoring (LOINC)
    CodeInfo("LOINC//8480-6", "Systolic blood pressure", "mmHg", "mm[Hg]", 0),
    CodeInfo("LOINC//8462-4", "Diastolic blood pressure", "mmHg", "mm[Hg]", 0),
    CodeInfo("LOINC//39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2", 1),
    CodeInfo("LOINC//2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "mg/dL", 0),
    CodeInfo(
        "LOINC//55423-8", "Number of steps in unspecified time Pedometer", "steps", "{steps}", 0
    ),
    # medications (ATC), one row per prescription or refill
    CodeInfo("ATC//A10BA02", "metformin"),
    CodeInfo("ATC//A10AE04", "insulin glargine"),
    CodeInfo("ATC//A10BK01", "dapagliflozin"),
    CodeInfo("ATC//C09AA05", "ramipril"),
    CodeInfo("ATC//C10AA05", "atorvastatin"),
)

#: code -> its index in `CODES` (the simulation carries codes as these indices)
CODE_INDEX: dict[str, int] = {info.code: i for i, info in enumerate(CODES)}


def code_index(code: str) -> int:
    """The index of ``code`` in `CODES`.

    Raises:
        KeyError: the code is not in the catalogue.
    """
    return CODE_INDEX[code]
