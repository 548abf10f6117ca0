"""``POST /v1/predict/{model}`` for text models: a note in each format the route takes comes
back as a `TextResult`, de-identified before anything is stored; bad bodies get 4xx JSON
errors; and the PHI canaries in the note never reach a response, a log, a row or a file.

The canary method is `test_no_phi`'s: every logger at DEBUG (SQL with its parameters),
stdout/stderr, every response, every database row and every file under the service's
folder are searched for each canary after the notes went through, accepted and refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from service_kit import register_models, running_service
from sqlalchemy import select
from test_no_phi import (  # the images' canary method, reused as is
    every_logger_at_debug,  # noqa: F401  (fixture)
    response_text,
    service_log,
)
from text_kit import (
    CANARY_NOTE,
    TEXT_CANARIES,
    add_fake_text_models,
    fhir_document,
    fhir_report,
    hl7_message,
    leaks,
    train_tiny_text_runs,
    use_fake_text_tasks,
)

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.store.schema import AuditRecord, Job

RECORD_LIMIT = 64 * 1024
FHIR = "application/fhir+json"
HL7 = "application/hl7-v2+er7"


def accepted_bodies() -> list[tuple[str, bytes, str]]:
    """``(what, body, content type)`` of one canary note in each format the route takes."""
    return [
        ("plain", CANARY_NOTE.encode(), "text/plain"),
        ("plain latin-1", CANARY_NOTE.encode("latin-1"), "text/plain; charset=ISO-8859-1"),
        ("plain utf-16", CANARY_NOTE.encode("utf-16"), "text/plain"),
        ("DocumentReference", json.dumps(fhir_document()).encode(), FHIR),
        ("DiagnosticReport", json.dumps(fhir_report()).encode(), FHIR),
        ("HL7 v2", hl7_message(), HL7),
        ("HL7 v2 (x-application)", hl7_message(), "x-application/hl7-v2+er7"),
    ]


def refused_bodies() -> list[tuple[str, str, bytes, str, int, str]]:
    """``(what, model, body, content type, status, error code)`` that must be refused."""
    two_docs = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": fhir_document()},
            {"resource": {**fhir_document(), "id": "other"}},
        ],
    }
    garbled_hl7 = hl7_message().replace(b"\rOBR|", b"\rZebediah Canarywing|")
    return [
        ("png", "ner", b"\x89PNG\r\n\x1a\n", "image/png", 415, "unsupported_media_type"),
        (
            "multipart",
            "ner",
            b"--x\r\n",
            "multipart/form-data; boundary=x",
            415,
            "unsupported_media_type",
        ),
        (
            "MEDS rows",
            "ner",
            b'{"events": []}',
            "application/x-ndjson",
            415,
            "unsupported_media_type",
        ),
        ("empty", "ner", b"", "text/plain", 422, "invalid_input"),
        ("blank", "ner", b" \n\n ", "text/plain", 422, "invalid_input"),
        ("binary", "ner", b"\x00\x01" + CANARY_NOTE.encode(), "text/plain", 422, "invalid_input"),
        (
            "not utf-8",
            "ner",
            CANARY_NOTE.encode("utf-16-le"),
            "text/plain; charset=utf-8",
            422,
            "invalid_input",
        ),
        ("too large", "ner", CANARY_NOTE.encode() * 2000, "text/plain", 413, "payload_too_large"),
        (
            "unbalanced HL7",
            "ner",
            hl7_message().split(b"\rOBR|")[0] + b"\rOBX|1|TX|||Zebediah",
            HL7,
            422,
            "invalid_input",
        ),
        ("garbled HL7", "ner", garbled_hl7, HL7, 422, "invalid_input"),
        (
            "malformed FHIR",
            "ner",
            json.dumps({**fhir_document(), "date": "Zebediah"}).encode(),
            FHIR,
            422,
            "invalid_input",
        ),
        ("cut FHIR", "ner", json.dumps(fhir_document()).encode()[:-30], FHIR, 422, "invalid_input"),
        ("two notes", "textcls", json.dumps(two_docs).encode(), FHIR, 422, "invalid_input"),
        ("image model", "cls2d", CANARY_NOTE.encode(), "text/plain", 415, "unsupported_media_type"),
    ]


@contextmanager
def serving_text_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: bool, images: bool = False
) -> Iterator:
    """The service with ``ner`` (text-ner) and ``textcls`` (text-classify) registered: the
    keyword stand-ins, or tiny runs trained for one epoch (`train_tiny_text_runs`); with
    ``images`` the image models of `register_models` too (``cls2d``, ...)."""
    work = tmp_path / "service"
    registry = (
        register_models(work / "registry", work / "runs")
        if images
        else ModelRegistry(work / "registry")
    )
    if trained:
        for name, run in train_tiny_text_runs(tmp_path / "train").items():
            registry.add(run, name)
    else:
        add_fake_text_models(registry, work / "runs")
        use_fake_text_tasks(monkeypatch)
    with running_service(
        work, f"sqlite:///{work}/medsight.db", registry=registry, max_record_bytes=RECORD_LIMIT
    ) as service:
        yield service


@pytest.fixture(scope="module")
def text_service(tmp_path_factory: pytest.TempPathFactory):
    """One service with the stand-in text models, shared by the tests that only add jobs."""
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        serving_text_models(tmp_path_factory.mktemp("text"), monkeypatch, trained=False) as s,
    ):
        yield s


def test_each_note_format_is_de_identified_stored_and_predicted(text_service) -> None:
    s = text_service
    header = s.tokens.header("clinician")
    sent = []
    for what, body, media in accepted_bodies():
        r = s.client.post(
            "/v1/predict/ner", content=body, headers={**header, "Content-Type": media}
        )
        assert r.status_code == 200, (what, r.text)
        job = r.json()
        sent.append(job["job_id"])
        assert job["state"] == "done", what
        result = job["result"]
        assert result["task"] == "text-ner" and result["deidentified"] is True
        by_concept = {e["concept"]: e for e in result["entities"] if e.get("concept")}
        assert by_concept["pleural_effusion"]["negation"] == "negated", what
        assert by_concept["pneumothorax"]["certainty"] == "uncertain", what
        assert by_concept["lung_nodule_or_mass"]["negation"] == "affirmed", what
        stored = s.settings.data_dir / "uploads" / job["job_id"] / "note.txt"
        text = stored.read_text(encoding="utf-8")
        assert "FINDINGS: No pleural effusion." in text, what
        assert not leaks(text), (what, leaks(text))
        assert job["input_sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
        note = s.client.get(result["links"]["note.txt"], headers=header)
        assert note.status_code == 200 and note.text == text
        # offsets point into the note the model read: the viewer highlights with them
        for entity in result["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]
    with s.db.session() as session:
        kinds = sorted(session.get(Job, job_id).input_kind for job_id in sent)
    assert kinds == ["text"] * 3 + ["text-fhir"] * 2 + ["text-hl7"] * 2


def test_a_text_classifier_answers_with_labels(text_service) -> None:
    s = text_service
    r = s.client.post(
        "/v1/predict/textcls",
        content=CANARY_NOTE.encode(),
        headers={**s.tokens.header("service"), "Content-Type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    label = r.json()["result"]["labels"]["finding:lung_nodule_or_mass"]
    assert label["label"] == "present" and label["probability"] == pytest.approx(0.9)


def test_the_viewer_gets_the_note_file_and_no_image(text_service) -> None:
    s = text_service
    h = s.tokens.header("clinician")
    r = s.client.post(
        "/v1/predict/ner", content=CANARY_NOTE.encode(), headers={**h, "Content-Type": "text/plain"}
    )
    job = r.json()["job_id"]
    meta = s.client.get(f"/v1/jobs/{job}/viewer", headers=h).json()
    assert meta["task"] == "text-ner" and meta["note_file"] == "note.txt"
    assert meta["layers"] == {"image": False, "mask": False, "heatmap": False}
    assert {e["concept"] for e in meta["result"]["entities"] if e.get("concept")} == {
        "pleural_effusion",
        "pneumothorax",
        "lung_nodule_or_mass",
    }
    assert s.client.get(f"/v1/jobs/{job}/viewer/image", headers=h).status_code == 404
    items = s.client.get("/v1/worklist", headers=h).json()["items"]
    [item] = [i for i in items if i["job_id"] == job]
    assert item["summary"] == "5 entities, 1 negated"


def test_bad_bodies_get_json_errors_and_audit_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_text_models(tmp_path, monkeypatch, trained=False, images=True) as s:
        _send_bad_bodies(s)


def _send_bad_bodies(s) -> None:
    refused = refused_bodies()
    for what, model, body, media, status, code in refused:
        r = s.client.post(
            f"/v1/predict/{model}",
            content=body,
            headers={**s.tokens.header("clinician"), "Content-Type": media},
        )
        assert r.status_code == status, (what, r.text)
        assert r.headers["content-type"].startswith("application/json"), what
        assert r.json()["error"]["code"] == code, (what, r.json())
        assert not leaks(r.text), (what, r.text)
    r = s.client.post(
        "/v1/predict/ner",
        content=b"x",
        headers={**s.tokens.header("admin"), "Content-Type": "text/plain"},
    )
    assert r.status_code == 403  # admins manage models; they do not predict
    with s.db.session() as session:
        outcomes = [
            row.outcome
            for row in session.execute(select(AuditRecord)).scalars()
            if row.action == "predict_submit"
        ]
        jobs = list(session.execute(select(Job)).scalars())
    assert len([o for o in outcomes if o.startswith("refused:")]) >= len(refused) - 1
    assert "refused:unsupported_media_type" in outcomes and "refused:invalid_input" in outcomes
    assert jobs == []  # nothing refused became a job
    assert not any((s.settings.data_dir / "uploads").glob("*/note.txt"))


@pytest.mark.parametrize("models", ["stand-in", "trained"])
def test_note_canaries_stay_out_of_logs_responses_rows_and_files(
    models: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_logger_at_debug: pytest.LogCaptureFixture,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    with serving_text_models(tmp_path, monkeypatch, trained=models == "trained", images=True) as s:
        _send_canaries_and_check(s, every_logger_at_debug, capfd)


def _send_canaries_and_check(
    s, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    assert len(leaks(CANARY_NOTE + json.dumps(fhir_document()) + hl7_message().decode())) == len(
        TEXT_CANARIES
    )
    responses: list[httpx.Response] = []
    s.client.event_hooks["response"].append(responses.append)
    for model, role in (("ner", "clinician"), ("textcls", "service")):
        h = s.tokens.header(role)
        for what, body, media in accepted_bodies():
            r = s.client.post(
                f"/v1/predict/{model}", content=body, headers={**h, "Content-Type": media}
            )
            assert r.status_code == 200, (what, r.text)
            job = r.json()
            result = job["result"]
            assert result["task"] == ("text-ner" if model == "ner" else "text-classify")
            assert result["deidentified"] is True and result["model"]["name"] == model
            if model == "textcls":
                assert result["labels"] and all(k.startswith("finding:") for k in result["labels"])
            note = s.client.get(result["links"]["note.txt"], headers=h).text
            assert all(0 <= e["start"] < e["end"] <= len(note) for e in result["entities"])
            for link in job["result"]["links"].values():
                assert s.client.get(link, headers=h).status_code == 200
            assert s.client.get(f"/v1/jobs/{job['job_id']}", headers=h).status_code == 200
            viewer = s.client.get(f"/v1/jobs/{job['job_id']}/viewer", headers=h)
            assert viewer.status_code == 200, viewer.text
    assert s.client.get("/v1/worklist", headers=s.tokens.header("clinician")).status_code == 200
    for what, model, body, media, status, _ in refused_bodies():
        r = s.client.post(
            f"/v1/predict/{model}",
            content=body,
            headers={**s.tokens.header("clinician"), "Content-Type": media},
        )
        assert r.status_code == status, (what, r.text)
    with s.db.session() as session:
        rows = [
            *session.execute(select(Job)).scalars(),
            *session.execute(select(AuditRecord)).scalars(),
        ]
        database = "\n".join(
            repr({c.name: getattr(row, c.name) for c in row.__table__.columns}) for row in rows
        )
    everything = {
        "log records": service_log(caplog.records),
        "stdout/stderr": "".join(capfd.readouterr()),
        "responses": b"\n".join(response_text(r) for r in responses),
        "database rows": database,
    }
    # the captures saw the traffic, so an empty capture cannot pass
    assert len(responses) >= 2 * len(accepted_bodies()) * 4
    assert "POST /v1/predict/{model} 200" in everything["log records"]
    assert "POST /v1/predict/{model} 422" in everything["log records"]
    assert "INSERT INTO audit_log" in everything["log records"]
    assert "INSERT INTO jobs" in everything["log records"]
    for where, text in everything.items():
        assert not leaks(text), f"canary in {where}: {leaks(text)}"
    root = s.settings.data_dir.parent
    stored = sorted((s.settings.data_dir / "uploads").rglob("note.txt"))
    assert len(stored) == 2 * len(accepted_bodies())
    found = {
        str(p.relative_to(root)): leaks(p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and leaks(p.read_bytes())
    }
    assert found == {}  # uploads, results, the database, the registry
