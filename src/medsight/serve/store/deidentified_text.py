"""Turn a clinical note sent to a text model (plain text, a FHIR DocumentReference or
DiagnosticReport, an HL7 v2 ORU^R01 message) into a stored, de-identified note: the input
file of a ``text-classify`` or ``text-ner`` prediction.

The body is decoded and parsed in memory (`medsight.text.io.read_notes.notes_from_bytes`:
encoding detected or refused, empty and oversized notes refused), and its text de-identified
(`medsight.text.deid.deidentify.deidentify_text`, surrogates: names, identifiers, contacts,
places replaced; dates moved by the patient's keyed offset, the same as the EHR side's)
before anything is written. Only the de-identified text is stored, as
``uploads/JOB/note.txt`` (UTF-8), whole or not at all; the body, the message's identifiers
(MRN, accession, document id) and its times are never written. The input hash is SHA-256 of
the de-identified text, so it identifies the note without being derived from PHI. Error
messages name the segment, entry or field at fault, never a value from the note.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from medsight.errors import InputError
from medsight.runs.atomic import atomic_dir
from medsight.serve.api.errors import ApiError
from medsight.serve.store.deidentified_input import TEXT_FILE, StoredInput, stored_path
from medsight.text.deid.deidentify import deidentify_text
from medsight.text.io.read_notes import FHIR_JSON, HL7_V2, media_type_of, notes_from_bytes

SOURCE = "request body"


def text_kind(content_type: str) -> str:
    """The input kind a job records for a note body: ``text``, ``text-fhir`` or ``text-hl7``."""
    media, _ = media_type_of(content_type)
    if media in FHIR_JSON:
        return "text-fhir"
    if media in HL7_V2:
        return "text-hl7"
    return "text"


def store_text(body: bytes, content_type: str, dest: Path, key: str) -> StoredInput:
    """Parse, de-identify and store one note in the new folder ``dest``.

    Args:
        body: the request body (read under the record size limit).
        content_type: the request's Content-Type, parameters included (``charset``).
        dest: the job's upload folder (must not exist).
        key: the service's de-identification secret (surrogates and date offsets).

    Raises:
        ApiError: ``invalid_input`` for a body that is not one readable note (bad encoding,
            empty, oversized, malformed FHIR or HL7, several notes); nothing is left in
            ``dest`` then.
    """
    try:
        notes = notes_from_bytes(body, content_type, SOURCE)
    except InputError as exc:
        raise ApiError("invalid_input", str(exc)) from None
    if len(notes) != 1:
        raise ApiError(
            "invalid_input",
            f"{SOURCE}: holds {len(notes)} notes (documents or OBR reports); send one per request",
        )
    note = notes[0]
    del body, notes
    try:
        # a note that names no patient gets surrogates and a date offset of its own (a random
        # stand-in identity), not the one every anonymous note would share
        patient = note.subject_id or f"anonymous-note:{secrets.token_hex(16)}"
        result = deidentify_text(note.text, key=key, patient=patient, mode="surrogate")
    except InputError as exc:
        raise ApiError("invalid_input", str(exc)) from None
    text = result.text
    del note, result
    data = text.encode("utf-8")
    with atomic_dir(dest) as tmp:
        (tmp / TEXT_FILE).write_bytes(data)
    kind = text_kind(content_type)
    return StoredInput(
        path=stored_path(dest, kind), kind=kind, sha256=hashlib.sha256(data).hexdigest(), slices=0
    )


__all__ = ["store_text", "text_kind"]
