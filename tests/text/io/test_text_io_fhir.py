"""FHIR DocumentReference / DiagnosticReport (and Bundles) to notes; malformed ones refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from medsight.errors import InputError
from medsight.text.io.fhir_documents import notes_from_fhir, notes_from_fhir_json
from medsight.text.io.read_notes import read_notes

REPORT = "FINDINGS: 7 mm nodule in the left lower lobe.\nIMPRESSION: follow-up CT."


def _b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


def document_reference(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "subject": {"reference": "Patient/pat-9"},
        "date": "2024-03-01T12:30:00+02:00",
        "content": [
            {"attachment": {"contentType": "application/pdf", "data": _b64("%PDF")}},
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": _b64("Discharged home."),
                }
            },
        ],
    }
    resource.update(overrides)
    return resource


def diagnostic_report(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": "rep-1",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}
        ],
        "code": {"text": "CT chest"},
        "subject": {"reference": "Patient/pat-9"},
        "effectiveDateTime": "2024-03-02",
        "presentedForm": [{"contentType": "text/plain", "data": _b64(REPORT)}],
        "conclusion": "follow-up CT.",
    }
    resource.update(overrides)
    return resource


def test_a_document_reference_gives_its_text_attachment() -> None:
    [note] = notes_from_fhir(document_reference(), "doc.json")
    assert note.text == "Discharged home."  # the PDF attachment is skipped
    assert (note.note_id, note.subject_id, note.kind) == ("doc-1", "pat-9", "discharge")
    assert note.time == dt.datetime(2024, 3, 1, 10, 30)


def test_an_attachment_charset_is_honoured() -> None:
    content = [
        {
            "attachment": {
                "contentType": "text/plain; charset=ISO-8859-1",
                "data": _b64("Größe", "latin-1"),
            }
        }
    ]
    [note] = notes_from_fhir(document_reference(content=content), "doc.json")
    assert note.text == "Größe"


def test_a_diagnostic_report_gives_presented_form_and_a_new_conclusion() -> None:
    [note] = notes_from_fhir(diagnostic_report(), "r.json")
    assert note.text == REPORT  # the conclusion is already in the attachment
    assert (note.kind, note.time) == ("radiology", dt.datetime(2024, 3, 2))
    [only] = notes_from_fhir(diagnostic_report(presentedForm=None, conclusion="No nodule."), "r")
    assert only.text == "No nodule."
    [both] = notes_from_fhir(diagnostic_report(conclusion="Benign."), "r")
    assert both.text == REPORT + "\n\nBenign."


def test_a_bundle_gives_each_document_and_skips_other_resources() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "pat-9"}},
            {"resource": document_reference()},
            {"resource": diagnostic_report()},
        ],
    }
    notes = notes_from_fhir_json(json.dumps(bundle).encode(), "bundle.json")
    assert [n.note_id for n in notes] == ["doc-1", "rep-1"]
    assert notes[1].source == "bundle.json: entry 2"


def test_read_notes_reads_a_fhir_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(diagnostic_report()))
    assert [n.text for n in read_notes(path)] == [REPORT]


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]},
            "holds no DocumentReference",
        ),
        ({"resourceType": "Patient", "id": "x"}, "a FHIR Patient holds no note"),
        ({"id": "x"}, "not a FHIR resource"),
        (document_reference(content="JohnCanary"), r"invalid FHIR DocumentReference: content"),
        (document_reference(date="JohnCanary 1999"), r"invalid FHIR DocumentReference: date"),
        (
            document_reference(
                content=[{"attachment": {"contentType": "text/plain", "data": "JohnCanary!"}}]
            ),
            r"invalid FHIR DocumentReference: content\.0\.attachment\.data",
        ),
        (
            document_reference(
                content=[
                    {"attachment": {"contentType": "text/plain", "url": "http://x/JohnCanary"}}
                ]
            ),
            "holds no text .* by url are not fetched",
        ),
        (
            diagnostic_report(presentedForm=None, conclusion=None),
            "no inline text/plain attachment and no conclusion",
        ),
        (
            {
                "resourceType": "Bundle",
                "entry": [{"resource": document_reference()}, {"resource": document_reference()}],
            },
            "two documents have the same id",
        ),
        (
            document_reference(content=[{"attachment": {"data": _b64("\x00\x01JohnCanary")}}]),
            "binary content",
        ),
    ],
    ids=[
        "no-docs",
        "patient",
        "no-type",
        "content",
        "date",
        "base64",
        "url",
        "no-text",
        "dup",
        "binary",
    ],
)
def test_malformed_fhir_gets_one_clear_line_without_values(resource: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        notes_from_fhir(resource, "body")
    assert "Canary" not in str(err.value) and "\n" not in str(err.value)


def test_json_that_does_not_parse_is_named() -> None:
    with pytest.raises(InputError, match=r"body: not JSON \(line 1, column 2\)"):
        notes_from_fhir_json(b"{JohnCanary", "body")
