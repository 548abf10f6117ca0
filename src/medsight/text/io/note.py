"""`Note`: one clinical document as every text component reads it.

Readers (`medsight.text.io`) make them; the pipeline, de-identification, the models and the
service take them. ``source`` says where the note came from for error messages (a file name
and row, never a value from the note).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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
