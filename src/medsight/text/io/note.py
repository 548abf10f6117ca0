"""`Note`: one clinical document as every text component reads it.

Readers (`medsight.text.io`) make them; the pipeline, de-identification, the models and the
service take them. ``source`` says where the note came from for error messages (a file name
and row, never a value from the note).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medsight.errors import InputError

#: a note longer than this (characters) is refused: clinical notes are a few kB, and the
#: rule pipeline and models hold a note and its tokens in memory
MAX_NOTE_CHARS = 1_000_000


@dataclass(frozen=True)
class Note:
    """One document.

    Attributes:
        note_id: unique within its source (file stem, table ``note_id``, FHIR id, OBR filler id).
        text: the document's text (UTF-8 decoded, line ends normalised to ``\\n``).
        subject_id: the patient (as the source names them), when known.
        time: when the note was written (naive UTC), when known.
        kind: ``radiology``, ``discharge``, ``feedback``, ... when known.
        source: where it came from, for messages (``notes.csv: row 4``).
    """

    note_id: str
    text: str
    subject_id: str | None = None
    time: dt.datetime | None = None
    kind: str | None = None
    source: str = ""


def check_note_bytes(size: int, where: str) -> None:
    """Refuse a note whose size in bytes alone says it is too long, before it is read.

    A character takes at most 4 bytes in UTF-8 (UTF-16 and legacy code pages take fewer), so
    a note over ``MAX_NOTE_CHARS * 4`` bytes cannot hold an acceptable note.

    Raises:
        InputError: ``size`` is over the limit (the message names ``where`` and the sizes).
    """
    limit = MAX_NOTE_CHARS * 4
    if size > limit:
        raise InputError(
            f"{where}: {size:,} bytes is over the {limit:,}-byte limit of one note "
            f"({MAX_NOTE_CHARS:,} characters): split it"
        )


def check_note_text(text: str, where: str) -> str:
    """The note's text if it can be used: neither empty (or blank) nor over the limit.

    Raises:
        InputError: an empty or blank note, or one over ``MAX_NOTE_CHARS`` characters.
    """
    if len(text) > MAX_NOTE_CHARS:
        raise InputError(
            f"{where}: {len(text):,} characters is over the limit of one note "
            f"({MAX_NOTE_CHARS:,}): split it"
        )
    if not text.strip():
        raise InputError(f"{where}: empty note (no text)")
    return text
