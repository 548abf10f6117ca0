"""ICD codes as sources store them (no decimal point) to MEDS codes (``ICD9CM//428.0``).

Sources such as MIMIC and OMOP's ``*_source_value`` keep ICD codes without the decimal
point (``4280``, ``E8497``, ``E119``); MEDS data here writes them as published, with it.
The vocabulary of a bare code is recognised by its shape where the source does not say.
"""

from __future__ import annotations

import re

ICD10CM_SHAPE = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
ICD9CM_SHAPE = re.compile(r"^([0-9]{3}|V[0-9]{2}|E[0-9]{3})(\.?[0-9]{1,2})?$")
ICD9PROC_SHAPE = re.compile(r"^[0-9]{2}\.?[0-9]{1,2}$")
ICD10PCS_SHAPE = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")


def icd9_diagnosis(code: str) -> str:
    """An ICD-9-CM diagnosis with its decimal point (``4280`` -> ``428.0``).

    E codes keep four characters before the point (``E8497`` -> ``E849.7``), the others three.
    """
    code = code.strip().replace(".", "").upper()
    head = 4 if code.startswith("E") else 3
    return code if len(code) <= head else f"{code[:head]}.{code[head:]}"


def icd9_procedure(code: str) -> str:
    """An ICD-9 procedure with its decimal point (``3605`` -> ``36.05``)."""
    code = code.strip().replace(".", "")
    return code if len(code) <= 2 else f"{code[:2]}.{code[2:]}"


def icd10_diagnosis(code: str) -> str:
    """An ICD-10(-CM) diagnosis with its decimal point (``E119`` -> ``E11.9``)."""
    code = code.strip().replace(".", "").upper()
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def diagnosis_code(raw: str, version: int | None = None) -> str | None:
    """``ICD9CM//...`` or ``ICD10CM//...`` of a diagnosis (by ``version`` 9/10, else by shape).

    A bare ``V`` code with two digits reads as ICD-9 (V01-V91 supplementary codes); ICD-10-CM
    V codes (external causes) are longer. None when the shape is neither.
    """
    text = raw.strip().upper()
    if not text:
        return None
    if version == 9:
        return f"ICD9CM//{icd9_diagnosis(text)}"
    if version == 10:
        return f"ICD10CM//{icd10_diagnosis(text)}"
    if ICD9CM_SHAPE.match(text):
        return f"ICD9CM//{icd9_diagnosis(text)}"
    if ICD10CM_SHAPE.match(text):
        return f"ICD10CM//{icd10_diagnosis(text)}"
    return None


def procedure_code(raw: str, version: int | None = None) -> str | None:
    """``ICD9PROC//``, ``ICD10PCS//`` or ``CPT4//`` of a procedure (by version, else shape)."""
    text = raw.strip().upper()
    if not text:
        return None
    if version == 9:
        return f"ICD9PROC//{icd9_procedure(text)}"
    if version == 10:
        return f"ICD10PCS//{text}"
    if re.fullmatch(r"[0-9]{4}[0-9A-Z]", text):
        return f"CPT4//{text}"
    if ICD9PROC_SHAPE.match(text):
        return f"ICD9PROC//{icd9_procedure(text)}"
    if ICD10PCS_SHAPE.match(text):
        return f"ICD10PCS//{text}"
    return None
