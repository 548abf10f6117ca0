"""The text content of a DICOM Structured Report as one note.

The content tree is walked in document order: the document title first, each CONTAINER as a
heading line (its concept name and a colon), each TEXT, CODE and NUM item as
``<concept name>: <value>`` (a code's meaning; a number with its unit), indented two spaces
per level under its container. Person names, dates, UIDs, image and coordinate references
are not report text and are left out. ``note_id`` is the SOPInstanceUID, ``subject_id`` the
PatientID, the time the ContentDate and ContentTime.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from medsight.errors import InputError
from medsight.text.io.note import Note, check_note_bytes, check_note_text
from medsight.text.io.note_time import parse_dicom_time

#: content tree deeper than this is refused (a loop or a malicious file, not a report)
MAX_DEPTH = 64


def read_sr_note(path: Path) -> Note:
    """The note of a DICOM SR file.

    Raises:
        InputError: not DICOM, not an SR, an SR with no text content, over the size limit.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(f"{where}: no such file") from None
    check_note_bytes(size, where)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        raise InputError(f"{where}: cannot be read as DICOM") from None
    if str(ds.get("Modality", "")) != "SR" or "ContentSequence" not in ds:
        raise InputError(f"{where}: not a DICOM Structured Report with content")
    lines: list[str] = []
    title = _concept_name(ds)
    if title:
        lines.append(title)
    if not _walk(ds.ContentSequence, 0, lines, where):
        raise InputError(f"{where}: the SR holds no text, code or numeric content")
    text = check_note_text("\n".join(lines), where)
    return Note(
        note_id=str(ds.get("SOPInstanceUID", "")) or path.stem,
        text=text,
        subject_id=str(ds.get("PatientID", "")).strip() or None,
        time=parse_dicom_time(
            str(ds.get("ContentDate", "") or ""), str(ds.get("ContentTime", "") or ""), where
        ),
        kind="radiology",
        source=where,
    )


def _walk(items: Any, depth: int, lines: list[str], where: str) -> int:
    """Append the lines of ``items`` and their children; returns how many values it found."""
    if depth > MAX_DEPTH:
        raise InputError(f"{where}: SR content nested over {MAX_DEPTH} levels")
    indent = "  " * depth
    found = 0
    for item in items:
        value_type = str(item.get("ValueType", ""))
        name = _concept_name(item)
        value = _value(item, value_type)
        if value_type == "CONTAINER":
            if name:
                lines.append(f"{indent}{name}:")
        elif value is not None:
            lines.append(f"{indent}{name}: {value}" if name else f"{indent}{value}")
            found += 1
        if "ContentSequence" in item:
            found += _walk(item.ContentSequence, depth + 1, lines, where)
    return found


def _value(item: Any, value_type: str) -> str | None:
    if value_type == "TEXT":
        text = str(item.get("TextValue", "") or "").replace("\r\n", "\n").replace("\r", "\n")
        return text.strip() or None
    if value_type == "CODE" and item.get("ConceptCodeSequence"):
        return str(item.ConceptCodeSequence[0].get("CodeMeaning", "")) or None
    if value_type == "NUM" and item.get("MeasuredValueSequence"):
        measured = item.MeasuredValueSequence[0]
        number = str(measured.get("NumericValue", "")).strip()
        with contextlib.suppress(ValueError):
            number = f"{float(number):g}"  # DS "5.0" reads as 5
        units = measured.get("MeasurementUnitsCodeSequence")
        unit = str(units[0].get("CodeValue", "")) if units else ""
        return f"{number} {unit}".strip() if unit not in ("", "1") else number or None
    return None


def _concept_name(item: Any) -> str:
    names = item.get("ConceptNameCodeSequence")
    if not names:
        return ""
    return str(names[0].get("CodeMeaning", "")).strip()
