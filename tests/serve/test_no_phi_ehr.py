"""The canary test for patient records: identifiers planted in a FHIR Bundle or MEDS rows
never leave the request.

The same method as `test_no_phi` (images): the canary patient's record (name, MRN, address,
phone, e-mail, a clinical note, the exact birth date, a doctor's name) goes through the
service, accepted and refused, and is read back every way a user can (the job, its result
files, the worklist, the viewer). Then every log record (all loggers at DEBUG, SQL with its
parameters), everything written to stdout/stderr, every response, every stored file (the
de-identified parquet read back as rows too) and every database row must be free of them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from ehr_kit import (
    CANARY_MRN,
    EHR_CANARIES,
    add_fake_risk_model,
    canary_bundle,
    meds_rows_body,
    train_tiny_risk_run,
    use_fake_risk_task,
)
from service_kit import register_models, running_service
from sqlalchemy import select
from test_no_phi import (  # the images' canary method, reused as is
    every_logger_at_debug,  # noqa: F401  (fixture)
    response_text,
    service_log,
)

from medsight.serve.store.schema import AuditRecord, Job

RECORD_LIMIT = 256 * 1024
FHIR = "application/fhir+json"


def leaks(data: bytes | str) -> list[str]:
    """The record canaries found in ``data`` (case-insensitive)."""
    raw = (data.encode("utf-8", "replace") if isinstance(data, str) else data).lower()
    return [c for c in EHR_CANARIES if c.lower().encode() in raw]


def stored_leaks(root: Path) -> dict[str, list[str]]:
    """Canaries in the files under ``root``: raw bytes, gzip decompressed, parquet as rows."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if path.suffix == ".parquet":
            data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        if hit := leaks(data):
            found[str(path.relative_to(root))] = hit
    return found


def refused(bundle: dict) -> list[tuple[str, bytes, str, int]]:
    """``(model, body, content type, status)`` of records that must be refused."""
    text = json.dumps(bundle).encode()
    return [
        ("risk", text[:-40], FHIR, 422),  # cut short: not JSON
        ("risk", json.dumps(canary_bundle(extra_patient=True)).encode(), FHIR, 422),
        ("risk", json.dumps(bundle["entry"][0]["resource"]).encode(), FHIR, 422),  # no Bundle
        ("risk", text + b" " * RECORD_LIMIT, FHIR, 413),
        ("risk", text, "text/plain", 415),
        ("cls2d", text, FHIR, 415),  # an image model
        ("no-such-model", text, FHIR, 404),
        (
            "risk",
            json.dumps({"events": [{"code": "x", "text_value": CANARY_MRN}]}).encode(),
            "application/json",
            422,
        ),
    ]


@pytest.mark.parametrize("model", ["stand-in", "trained"])
def test_record_identifiers_stay_out_of_logs_responses_and_storage(
    model: str,
    tmp_path: Path,
    every_logger_at_debug: pytest.LogCaptureFixture,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = json.dumps([canary_bundle(), meds_rows_body(CANARY_MRN)])
    assert len(leaks(sent)) == len(EHR_CANARIES) - 2  # all but two other spellings
    work = tmp_path / "service"
    registry = register_models(work / "registry", work / "runs")
    if model == "trained":
        registry.add(train_tiny_risk_run(tmp_path / "train"), "risk")
    else:
        add_fake_risk_model(registry, work / "runs")
        use_fake_risk_task(monkeypatch)
    with running_service(
        work, f"sqlite:///{work}/medsight.db", registry=registry, max_record_bytes=RECORD_LIMIT
    ) as s:
        responses: list[httpx.Response] = []
        s.client.event_hooks["response"].append(responses.append)
        accepted = [
            ("clinician", FHIR, canary_bundle()),
            ("service", "application/json", canary_bundle(patient_id="P-" + CANARY_MRN)),
            ("clinician", "application/json", meds_rows_body(CANARY_MRN)),
        ]
        for role, media, body in accepted:
            h = s.tokens.header(role)
            r = s.client.post(
                "/v1/predict/risk",
                content=json.dumps(body).encode(),
                headers={**h, "Content-Type": media},
            )
            assert r.status_code == 200, r.text
            job = r.json()
            for link in job["result"]["links"].values():
                assert s.client.get(link, headers=h).status_code == 200
            assert s.client.get(f"/v1/jobs/{job['job_id']}", headers=h).status_code == 200
            viewer = s.client.get(f"/v1/jobs/{job['job_id']}/viewer", headers=h)
            assert viewer.status_code == 200, viewer.text
        assert s.client.get("/v1/worklist", headers=s.tokens.header("clinician")).status_code == 200
        for model, content, media, status in refused(canary_bundle()):
            r = s.client.post(
                f"/v1/predict/{model}",
                content=content,
                headers={**s.tokens.header("clinician"), "Content-Type": media},
            )
            assert r.status_code == status, (model, media, r.text)
        with s.db.session() as session:
            rows = [
                *session.execute(select(Job)).scalars(),
                *session.execute(select(AuditRecord)).scalars(),
            ]
            database = "\n".join(
                repr({c.name: getattr(row, c.name) for c in row.__table__.columns}) for row in rows
            )
        data_dir = s.settings.data_dir

    everything = {
        "log records": service_log(every_logger_at_debug.records),
        "stdout/stderr": "".join(capfd.readouterr()),
        "responses": b"\n".join(response_text(r) for r in responses),
        "database rows": database,
    }
    # the captures did see the traffic, so an empty capture cannot pass this test
    assert len(responses) >= 18
    assert "POST /v1/predict/{model} 200" in everything["log records"]
    assert "POST /v1/predict/{model} 422" in everything["log records"]
    assert "INSERT INTO audit_log" in everything["log records"]  # SQL and its parameters too
    assert "INSERT INTO jobs" in everything["log records"]
    assert database.count("predict_submit") >= 3 + len(refused(canary_bundle())) - 1
    for where, text in everything.items():
        assert not leaks(text), f"canary in {where}: {leaks(text)}"
    # the stored inputs are there (and were checked), and nothing else of the request was kept
    stored = sorted((data_dir / "uploads").rglob("*.parquet"))
    assert len(stored) == 3
    assert (work / "medsight.db").is_file()
    assert stored_leaks(work) == {}  # uploads, results, the database, the registry
