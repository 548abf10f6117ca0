"""Read back a classification SR written by `medsight.imaging.io.dicom_sr` (tests, audits, tools).

Items are found by their concept names wherever they sit in the content tree, so a report
whose items were reordered (by a PACS, say) still reads.
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
