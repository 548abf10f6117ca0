"""read_notes and notes_from_bytes: each source kind reaches its reader; others are refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.io.read_notes import is_text_media_type, notes_from_bytes, read_notes

HL7 = "\r".join(
    [
        "MSH|^~\\&|RIS|H|EHR|H|20240101||ORU^R01|1|P|2.5",
        "OBR|1||ACC1|CT",
        "OBX|1|TX|||No nodule.",
    ]
)


def test_plain_text_body_honours_its_charset() -> None:
    [note] = notes_from_bytes(
        "Größe 5 mm\r\n".encode("latin-1"), "text/plain; charset=ISO-8859-1", "upload"
    )
    assert (note.note_id, note.text, note.source) == ("upload", "Größe 5 mm\n", "upload")
    [utf8] = notes_from_bytes("Größe".encode(), "text/plain", "upload")
    assert utf8.text == "Größe"


def test_fhir_and_hl7_bodies() -> None:
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [
            {"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"Hi.").decode()}}
        ],
    }
    [doc] = notes_from_bytes(json.dumps(resource).encode(), "application/fhir+json", "body")
    assert (doc.note_id, doc.text) == ("DocumentReference-0", "Hi.")
    for media in ("x-application/hl7-v2+er7", "application/hl7-v2+er7; charset=utf-8"):
        [report] = notes_from_bytes(HL7.encode(), media, "body")
        assert (report.note_id, report.text) == ("ACC1", "No nodule.")


@pytest.mark.parametrize(
    ("body", "media", "message"),
    [
        (b"x", "image/png", "media type 'image/png' holds no note"),
        (b"", "text/plain", "body: empty note"),
        (b"\x00\x01\x02", "text/plain", "body: binary content"),
        (b"ok \xfa\xfb", "text/plain; charset=utf-8", "body: not valid utf-8"),
        (b"{", "application/fhir+json", "body: not JSON"),
        (b"PID|1", "application/hl7-v2+er7", "not an HL7 v2 message"),
    ],
)
def test_bad_bodies_get_one_line(body: bytes, media: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        notes_from_bytes(body, media, "body")


def test_oversized_bodies_are_refused_by_size(small_note_limit: int) -> None:
    with pytest.raises(InputError, match="401 bytes is over the 400-byte limit of one note"):
        notes_from_bytes(b"a" * 401, "text/plain", "body")
    with pytest.raises(InputError, match="1,601 bytes is over the 1,600-byte limit of a message"):
        notes_from_bytes(b"a" * 1601, "application/fhir+json", "body")


def test_media_types_the_service_takes() -> None:
    assert is_text_media_type("Text/Plain; charset=utf-8")
    assert is_text_media_type("x-application/hl7-v2+er7")
    assert not is_text_media_type("application/dicom")


def test_read_notes_dispatches_by_kind(tmp_path: Path) -> None:
    (tmp_path / "m.hl7").write_text(HL7)
    (tmp_path / "t.csv").write_text("note_id,subject_id,time,text\nn1,p1,2024-01-01,Text one\n")
    assert [n.note_id for n in read_notes(tmp_path / "m.hl7")] == ["ACC1"]
    assert [n.note_id for n in read_notes(tmp_path / "t.csv")] == ["n1"]
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match=r"x\.pdf: not a note source"):
        read_notes(tmp_path / "x.pdf")
    with pytest.raises(InputError, match="no such file or folder"):
        read_notes(tmp_path / "missing.txt")
