"""One entry point for every note source: a path (`read_notes`) or a request body with its
media type (`notes_from_bytes`, for the service).

====================================  ===========================================  ===========
source                                what becomes a note                          reader
====================================  ===========================================  ===========
``.txt`` file                         the file (``note_id`` = stem)                text_files
folder                                each ``.txt`` in it, in name order           text_files
``.csv`` ``.tsv`` ``.jsonl``          each row (``note_id, subject_id, time,      notes_table
``.ndjson`` ``.parquet``              text[, kind]``; other columns kept)
``.json`` / ``application/fhir+json`` a DocumentReference, DiagnosticReport or     fhir_documents
                                      a Bundle of them: each document
``.hl7`` ``.er7`` /                   each OBR report of ORU^R01 messages          hl7_oru
``application/hl7-v2+er7``
``.dcm``                              the text content of a DICOM SR               dicom_sr_text
``text/plain`` (body)                 the body (``charset`` parameter honoured)    decode
====================================  ===========================================  ===========
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsight.errors import InputError
from medsight.text.io import note as note_limits
from medsight.text.io.decode import decode_text
from medsight.text.io.dicom_sr_text import read_sr_note
from medsight.text.io.fhir_documents import notes_from_fhir_json
from medsight.text.io.hl7_oru import notes_from_hl7_bytes
from medsight.text.io.note import Note, check_note_bytes, check_note_text
from medsight.text.io.notes_table import TABLE_SUFFIXES, read_notes_table
from medsight.text.io.text_files import read_text_folder, read_text_note, text_files

#: media types of a body that holds notes (the service's text route takes these)
PLAIN_TEXT = ("text/plain",)
FHIR_JSON = ("application/fhir+json", "application/json+fhir", "application/json")
HL7_V2 = ("x-application/hl7-v2+er7", "application/hl7-v2+er7", "application/hl7-v2")
TEXT_MEDIA_TYPES = (*PLAIN_TEXT, *FHIR_JSON, *HL7_V2)

#: a FHIR or HL7 file or body may hold several notes, and base64 adds a third
MESSAGE_NOTES = 4


def read_notes(path: Path) -> Iterator[Note]:
    """The notes at ``path`` (see the module's table), read one source at a time.

    The path, its kind and its size are checked at once; each note when it is reached.

    Raises:
        InputError: a missing path, a kind of file that holds no notes, and every reader's
            errors (bad encoding, empty or oversized notes, malformed tables, FHIR or HL7).
    """
    path = Path(path)
    if path.is_dir():
        text_files(path)
        return read_text_folder(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return iter([read_text_note(path)])
    if suffix in TABLE_SUFFIXES:
        return iter(read_notes_table(path).notes)
    if suffix == ".dcm":
        return iter([read_sr_note(path)])
    if suffix in (".json", ".hl7", ".er7"):
        _check_message_bytes(path.stat().st_size, str(path))
        raw = path.read_bytes()
        if suffix == ".json":
            return iter(notes_from_fhir_json(raw, str(path)))
        return iter(notes_from_hl7_bytes(raw, str(path)))
    raise InputError(
        f"{path}: not a note source (expected .txt, a folder of them, a notes table "
        f"({', '.join(TABLE_SUFFIXES)}), FHIR .json, HL7 v2 .hl7/.er7 or a DICOM SR .dcm)"
    )


def media_type_of(content_type: str) -> tuple[str, str | None]:
    """The bare media type (lower case) and ``charset`` parameter of a Content-Type header."""
    media, *params = content_type.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.strip().lower(), charset


def is_text_media_type(content_type: str) -> bool:
    """Whether a body of this Content-Type holds notes (`notes_from_bytes` reads it)."""
    return media_type_of(content_type)[0] in TEXT_MEDIA_TYPES


def notes_from_bytes(body: bytes, media_type: str, source: str) -> list[Note]:
    """The notes of a request body.

    Args:
        body: the body as received.
        media_type: its Content-Type (parameters allowed: ``text/plain; charset=latin-1``).
        source: names the body in messages and is a plain-text note's ``note_id``.

    Returns:
        One note for ``text/plain``; one per document (FHIR) or report (HL7 v2).

    Raises:
        InputError: a media type that holds no notes, and every reader's errors.
    """
    media, charset = media_type_of(media_type)
    if media in PLAIN_TEXT:
        check_note_bytes(len(body), source)
        text = check_note_text(decode_text(body, source, charset), source)
        return [Note(note_id=source, text=text, source=source)]
    if media in FHIR_JSON:
        _check_message_bytes(len(body), source)
        return notes_from_fhir_json(body, source)
    if media in HL7_V2:
        _check_message_bytes(len(body), source)
        return notes_from_hl7_bytes(body, source, charset)
    raise InputError(
        f"{source}: media type {media[:60]!r} holds no note (send one of "
        f"{', '.join(TEXT_MEDIA_TYPES)})"
    )


def _check_message_bytes(size: int, where: str) -> None:
    limit = note_limits.MAX_NOTE_CHARS * 4 * MESSAGE_NOTES
    if size > limit:
        raise InputError(f"{where}: {size:,} bytes is over the {limit:,}-byte limit of a message")
