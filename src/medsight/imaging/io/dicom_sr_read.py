"""Read DICOM Structured Reports: any SR described for `medsight inspect`, and back a
classification SR written by `medsight.imaging.io.dicom_sr` (tests, audits, tools).

Items are found by their concept names wherever they sit in the content tree, so a report
whose items were reordered (by a PACS, say) still reads. A description lists the report's
structured content only (coded findings, numeric measurements, algorithm names); free text
is counted, never copied, since a report's text may name the patient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from medsight.errors import InputError
from medsight.imaging.io.dicom_sr import (
    CLASS_CODE,
    CONFORMAL_MEMBER_CODE,
    CONFORMAL_SET_CODE,
    DISCLAIMER_CODE,
    PROBABILITY_CODE,
    REFER_CODE,
)


def read_classification_sr(path: Path) -> dict[str, Any]:
    """Read back what `write_classification_sr` wrote (tolerating reordered items).

    Returns:
        ``study_uid``, ``series_uid``, ``predicted``, ``probabilities`` ({class: float},
        in the report's order), ``conformal_set`` (list, or None when none was computed),
        ``refer``, ``model`` (``name``, ``version``, ``sha256``), ``disclaimer`` and
        ``evidence`` (the referenced SOPInstanceUIDs).

    Raises:
        InputError: ``path`` is not DICOM, not an SR, or holds no medsight classification.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as DICOM") from exc
    if str(ds.get("Modality", "")) != "SR" or "ContentSequence" not in ds:
        raise InputError(f"{path}: not a DICOM Structured Report")
    items = list(_walk(ds.ContentSequence))
    probabilities: dict[str, float] = {}
    record: dict[str, Any] = {"conformal_set": None, "refer": False, "disclaimer": ""}
    model: dict[str, str] = {}
    members: list[str] = []
    computed = False
    for item in items:
        name = _concept(item)
        if name == _key(PROBABILITY_CODE) and item.ValueType == "NUM":
            classes = [
                _meaning(mod.ConceptCodeSequence)
                for mod in item.get("ContentSequence", [])
                if _concept(mod) == _key(CLASS_CODE) and mod.ValueType == "CODE"
            ]
            measured = item.MeasuredValueSequence[0]
            # FloatingPointValue is exact; NumericValue (DS, 16 characters) may be rounded.
            value = measured.get("FloatingPointValue", measured.NumericValue)
            if classes:
                probabilities[classes[0]] = float(value)
        elif name == ("121071", "DCM") and item.ValueType == "CODE":
            record["predicted"] = _meaning(item.ConceptCodeSequence)
        elif name == _key(CONFORMAL_SET_CODE):
            computed = _code_value(item) == codes.SCT.Yes.value
        elif name == _key(CONFORMAL_MEMBER_CODE):
            members.append(_meaning(item.ConceptCodeSequence))
        elif name == _key(REFER_CODE):
            record["refer"] = _code_value(item) == codes.SCT.Yes.value
        elif name == _key(DISCLAIMER_CODE):
            record["disclaimer"] = str(item.TextValue)
        elif name == ("111001", "DCM"):
            model["name"] = str(item.TextValue)
        elif name == ("111003", "DCM"):
            model["version"] = str(item.TextValue)
        elif name == ("111002", "DCM") and str(item.TextValue).startswith("sha256="):
            model["sha256"] = str(item.TextValue).removeprefix("sha256=")
    if not probabilities or "predicted" not in record:
        raise InputError(f"{path}: SR holds no medsight classification")
    if computed:
        record["conformal_set"] = members
    evidence = [
        str(ref.ReferencedSOPInstanceUID)
        for study in ds.get("CurrentRequestedProcedureEvidenceSequence", [])
        for series_item in study.ReferencedSeriesSequence
        for ref in series_item.ReferencedSOPSequence
    ]
    return {
        "study_uid": str(ds.StudyInstanceUID),
        "series_uid": str(ds.SeriesInstanceUID),
        "probabilities": probabilities,
        "model": model,
        "evidence": evidence,
        **record,
    }


#: items that describe the document or its observer, not a finding (DCM codes)
_DOCUMENT_CONTEXT = {"121049", "121005", "121058"}  # language, observer type, procedure
#: TEXT items safe to show: they name the algorithm, never the patient (DCM codes)
_ALGORITHM_TEXT = {"111001": "name", "111003": "version"}
#: items listed per kind; a longer report says how many more there are
_LISTED = 100


def describe_dicom_sr(path: Path) -> dict[str, Any]:
    """What an SR holds: template, title, coded findings, measurements, referenced study.

    The content tree is walked along CONTAINS relationships (image library entries and
    their acquisition context are counted as images, not listed as measurements); a
    measurement's concept modifiers (for a probability, the class it is of) are listed
    with it.

    Returns:
        A JSON-ready record (``kind`` ``dicom-sr``): ``sop_class``, ``title``, ``template``
        (``TID nnnn``), ``completion``/``verification``/``preliminary`` flags, ``study_uid``,
        ``evidence`` (referenced studies, series and instance counts), ``findings`` (coded
        items: name, value), ``measurements`` (name, value, unit, qualifiers),
        ``algorithms``, ``n_images``, ``n_text_items`` and ``warnings``. No patient data.

    Raises:
        InputError: ``path`` is not DICOM or not a Structured Report.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as DICOM") from exc
    if str(ds.get("Modality", "")) != "SR" and "ContentSequence" not in ds:
        raise InputError(f"{path}: not a DICOM Structured Report")
    findings: list[dict[str, Any]] = []
    measurements: list[dict[str, Any]] = []
    algorithms: dict[str, str] = {}
    counts = {"images": 0, "text": 0}
    for item in _contained(ds.get("ContentSequence", [])):
        value_type = str(item.get("ValueType", ""))
        code, _ = _concept(item)
        if value_type == "CODE" and code not in _DOCUMENT_CONTEXT:
            findings.append({"name": _name(item), "value": _code_meaning(item)})
        elif value_type == "NUM":
            measurements.append(_measurement(item))
        elif value_type == "IMAGE":
            counts["images"] += 1
        elif value_type == "TEXT":
            counts["text"] += 1
        for modifier in item.get("ContentSequence", []):
            key, scheme = _concept(modifier)
            if scheme == "DCM" and key in _ALGORITHM_TEXT and modifier.ValueType == "TEXT":
                algorithms[_ALGORITHM_TEXT[key]] = str(modifier.get("TextValue", ""))
    warnings = [
        f"{len(items) - _LISTED} more {what} not listed"
        for what, items in (("findings", findings), ("measurements", measurements))
        if len(items) > _LISTED
    ]
    template = _first_item(ds, "ContentTemplateSequence")
    evidence = [
        {
            "study_uid": str(study.get("StudyInstanceUID", "")),
            "series_uid": str(series.get("SeriesInstanceUID", "")),
            "n_instances": len(series.get("ReferencedSOPSequence", [])),
        }
        for keyword in (
            "CurrentRequestedProcedureEvidenceSequence",
            "PertinentOtherEvidenceSequence",
        )
        for study in ds.get(keyword, [])
        for series in study.get("ReferencedSeriesSequence", [])
    ]
    return {
        "path": str(path),
        "kind": "dicom-sr",
        "modality": str(ds.get("Modality", "")),
        "sop_class": getattr(ds.get("SOPClassUID"), "name", str(ds.get("SOPClassUID", ""))),
        "title": _name(ds) if "ConceptNameCodeSequence" in ds else "",
        "template": f"TID {template.TemplateIdentifier}"
        if template is not None and "TemplateIdentifier" in template
        else "",
        "completion": str(ds.get("CompletionFlag", "")),
        "verification": str(ds.get("VerificationFlag", "")),
        "preliminary": str(ds.get("PreliminaryFlag", "")),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "evidence": evidence,
        "findings": findings[:_LISTED],
        "measurements": measurements[:_LISTED],
        "algorithms": algorithms,
        "n_images": counts["images"],
        "n_text_items": counts["text"],
        "warnings": warnings,
    }


def _contained(sequence: Sequence[Dataset]) -> Iterator[Dataset]:
    """Items reached from the root along CONTAINS, descending into containers only."""
    for item in sequence:
        if str(item.get("RelationshipType", "")) != "CONTAINS":
            continue
        yield item
        if item.get("ValueType") == "CONTAINER":
            yield from _contained(item.get("ContentSequence", []))


def _measurement(item: Dataset) -> dict[str, Any]:
    measured = _first_item(item, "MeasuredValueSequence")
    value: float | None = None
    unit = ""
    if measured is not None:
        raw = measured.get("FloatingPointValue", measured.get("NumericValue"))
        value = float(raw) if raw not in (None, "") else None
        units = _first_item(measured, "MeasurementUnitsCodeSequence")
        # UCUM "1" is a ratio without unit: nothing to print
        unit = str(units.CodeValue) if units is not None and units.CodeValue != "1" else ""
    qualifiers = [
        f"{_name(m)}: {_code_meaning(m)}"
        for m in item.get("ContentSequence", [])
        if m.get("ValueType") == "CODE"
        and m.get("RelationshipType") in ("HAS CONCEPT MOD", "HAS PROPERTIES")
    ]
    return {"name": _name(item), "value": value, "unit": unit, "qualifiers": qualifiers}


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    sequence = ds.get(keyword)
    return sequence[0] if sequence else None


def _name(item: Dataset) -> str:
    names = item.get("ConceptNameCodeSequence")
    return str(names[0].get("CodeMeaning", "")) if names else ""


def _code_meaning(item: Dataset) -> str:
    concept = item.get("ConceptCodeSequence")
    return str(concept[0].get("CodeMeaning", "")) if concept else ""


def _walk(sequence: Sequence[Dataset]) -> Iterator[Dataset]:
    for item in sequence:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def _concept(item: Dataset) -> tuple[str, str]:
    names = item.get("ConceptNameCodeSequence")
    return (str(names[0].CodeValue), str(names[0].CodingSchemeDesignator)) if names else ("", "")


def _key(code: Code) -> tuple[str, str]:
    return (str(code.value), str(code.scheme_designator))


def _meaning(sequence: Sequence[Dataset]) -> str:
    return str(sequence[0].CodeMeaning)


def _code_value(item: Dataset) -> str:
    concept = item.get("ConceptCodeSequence")
    return str(concept[0].CodeValue) if concept else ""
