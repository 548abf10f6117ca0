"""FHIR R4 documents to notes: ``DocumentReference``, ``DiagnosticReport`` and Bundles of them.

Each resource is validated with ``fhir.resources`` (its R4B models, FHIR 4.3, which read the
R4 resources used here: the same models the EHR importer uses). Then:

=================  =====================================================================
DocumentReference  text = its ``content[].attachment`` with inline ``data`` (base64) in
                   ``text/plain`` (charset honoured) or of no declared type, joined by a
                   blank line; time = ``date`` (else ``context.period.start``); kind from
                   the LOINC document ``type`` (18842-5 -> discharge, 18748-4 -> radiology,
                   ...)
DiagnosticReport   text = its ``presentedForm`` text attachments and then its
                   ``conclusion`` (when the attachments do not already hold it); time =
                   ``effectiveDateTime`` (else ``effectivePeriod.start``, else ``issued``);
                   kind from the v2-0074 ``category`` (RAD, CT, MR, US, ... -> radiology)
=================  =====================================================================

``note_id`` is the resource id, ``subject_id`` the referenced Patient's id (or the
reference's identifier value). Attachments given only by ``url`` are not fetched, and other
content types (PDF, HTML) are skipped; a document with no usable text is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from medsight.errors import InputError
from medsight.text.io.decode import decode_text
from medsight.text.io.note import Note, check_note_bytes, check_note_text
from medsight.text.io.note_time import naive_utc

#: resource types that hold notes
DOCUMENT_TYPES = ("DocumentReference", "DiagnosticReport")

#: LOINC document type -> note kind
KIND_OF_LOINC = {
    "18842-5": "discharge",
    "18748-4": "radiology",
    "11506-3": "progress",
    "34117-2": "history_and_physical",
    "11488-4": "consult",
    "28570-0": "procedure",
    "11526-1": "pathology",
    "60591-5": "summary",
}

#: HL7 v2-0074 diagnostic service section -> note kind
KIND_OF_SECTION = {
    **dict.fromkeys(
        ("RAD", "CT", "MR", "NMR", "US", "RX", "NMS", "VUS", "XRC", "OUS"), "radiology"
    ),
    **dict.fromkeys(("SP", "PAT", "CP", "CTH"), "pathology"),
    **dict.fromkeys(("LAB", "CH", "HM", "MB", "SR", "CG"), "laboratory"),
    **dict.fromkeys(("EC", "CUS", "EN", "PF", "OT", "OSL", "PHY", "IMM", "OTH"), None),
}


def fhir_model(resource_type: str) -> Any:
    """The ``fhir.resources`` R4B model class of a resource type."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validate_document(resource: Any, where: str) -> Any:
    """The validated model of a DocumentReference or DiagnosticReport (a dict).

    Raises:
        InputError: not a JSON object with a resourceType, another resource type, or a
            resource its model rejects (names the first bad field, never its value).
    """
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise InputError(f"{where}: not a FHIR resource (a JSON object with a resourceType)")
    rtype = resource["resourceType"]
    if rtype not in DOCUMENT_TYPES:
        raise InputError(
            f"{where}: a FHIR {rtype[:40]} holds no note (send a DocumentReference, a "
            "DiagnosticReport or a Bundle of them)"
        )
    try:
        return fhir_model(rtype).model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "resource"
        message = " ".join(str(first.get("msg", "invalid")).split())
        value = first.get("input")
        if isinstance(value, str) and value and value in message:
            message = str(first.get("type", "invalid"))
        raise InputError(f"{where}: invalid FHIR {rtype}: {field}: {message}") from None


def notes_from_fhir_json(raw: bytes, where: str) -> list[Note]:
    """The notes of a FHIR JSON body or file: one document or a Bundle of them.

    Raises:
        InputError: not JSON, not a document or Bundle, an invalid resource, a document with
            no text, a Bundle with no document, two documents with one id.
    """
    try:
        resource = json.loads(decode_text(raw, where))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON (line {exc.lineno}, column {exc.colno})") from None
    return notes_from_fhir(resource, where)


def notes_from_fhir(resource: Any, where: str) -> list[Note]:
    """The notes of a parsed FHIR resource: a document or a Bundle of them (see module)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        notes = list(_bundle_notes(resource, where))
        if not notes:
            raise InputError(f"{where}: the Bundle holds no DocumentReference or DiagnosticReport")
    else:
        notes = [note_of_document(validate_document(resource, where), where, 0)]
    seen: set[str] = set()
    for note in notes:
        if note.note_id in seen:
            raise InputError(f"{note.source}: two documents have the same id")
        seen.add(note.note_id)
    return notes


def _bundle_notes(bundle: dict[str, Any], where: str) -> Iterator[Note]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(f"{where}: invalid FHIR Bundle: entry is not a list")
    for index, entry in enumerate(entries):
        here = f"{where}: entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise InputError(f"{here}: invalid FHIR Bundle entry (no resource object)")
        if entry["resource"].get("resourceType") in DOCUMENT_TYPES:
            yield note_of_document(validate_document(entry["resource"], here), here, index)


def note_of_document(model: Any, where: str, index: int) -> Note:
    """The note of a validated DocumentReference or DiagnosticReport model."""
    rtype = model.get_resource_type()
    if rtype == "DocumentReference":
        parts = [
            _attachment_text(content.attachment, f"{where}: content {i}")
            for i, content in enumerate(model.content or [])
        ]
        period = model.context.period if model.context else None
        time = model.date or (period.start if period else None)
        kind = _kind_of_type(model.type)
    else:
        parts = [
            _attachment_text(form, f"{where}: presentedForm {i}")
            for i, form in enumerate(model.presentedForm or [])
        ]
        conclusion = (model.conclusion or "").strip()
        if conclusion and not any(conclusion in part for part in parts if part):
            parts.append(conclusion.replace("\r\n", "\n").replace("\r", "\n"))
        period = model.effectivePeriod
        time = model.effectiveDateTime or (period.start if period else None) or model.issued
        kind = _kind_of_category(model.category)
    texts = [part.strip("\n") for part in parts if part and part.strip()]
    if not texts:
        raise InputError(
            f"{where}: FHIR {rtype} holds no text (no inline text/plain attachment"
            + (" and no conclusion" if rtype == "DiagnosticReport" else "")
            + "; attachments by url are not fetched)"
        )
    text = check_note_text("\n\n".join(texts), where)
    return Note(
        note_id=str(model.id) if model.id else f"{rtype}-{index}",
        text=text,
        subject_id=_subject_of(model.subject),
        time=naive_utc(time) if time is not None else None,
        kind=kind,
        source=where,
    )


def _attachment_text(attachment: Any, where: str) -> str | None:
    if attachment is None or attachment.data is None:
        return None
    media, _, params = (attachment.contentType or "text/plain").partition(";")
    if media.strip().lower() != "text/plain":
        return None
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    data = bytes(attachment.data)  # fhir.resources has decoded and checked the base64
    check_note_bytes(len(data), where)
    return decode_text(bytes(data), where, charset)


def _subject_of(reference: Any) -> str | None:
    if reference is None:
        return None
    if reference.reference:
        key = str(reference.reference)
        for prefix in ("urn:uuid:", "Patient/"):
            key = key.removeprefix(prefix)
        return key.rsplit("/", 1)[-1] or None
    if reference.identifier is not None and reference.identifier.value:
        return str(reference.identifier.value)
    return None


def _kind_of_type(concept: Any) -> str | None:
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code in KIND_OF_LOINC:
            return KIND_OF_LOINC[coding.code]
    return None


def _kind_of_category(categories: Any) -> str | None:
    for concept in categories or []:
        for coding in concept.coding or []:
            code = str(coding.code or "").upper()
            if code in KIND_OF_SECTION:
                return KIND_OF_SECTION[code]
    return None
