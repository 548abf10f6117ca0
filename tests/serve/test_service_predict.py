"""The inference service end to end: uploads in, de-identified storage, results out, audited.

Runs the FastAPI app (worker thread included) on SQLite and on a real PostgreSQL where the
database matters, with tiny untrained models registered in a real registry.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from service_kit import (
    CANARY_ID,
    CANARY_NAME,
    ct_series_bytes,
    nifti_bytes,
    png_bytes,
    running_service,
    upload,
    wait_for_job,
    zip_bytes,
)
from sqlalchemy import select, text

from medsight.serve.store.audit import verify_chain
from medsight.serve.store.schema import AuditRecord, Job


def _actions(db, target: str) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(AuditRecord).where(AuditRecord.target == target).order_by(AuditRecord.seq)
        ).scalars()
        return [(r.action, r.outcome) for r in rows]


def test_predict_2d_3d_and_segment_with_audit(tmp_path: Path, database_url: str) -> None:
    with running_service(tmp_path, database_url) as s:
        c, t = s.client, s.tokens
        # a single 2D image is answered while the client waits
        r = c.post("/v1/predict/cls2d", files=upload([png_bytes()]), headers=t.header("clinician"))
        assert r.status_code == 200, r.text
        body = r.json()
        probs = body["result"]["probabilities"]
        assert body["state"] == "done" and abs(sum(probs.values()) - 1) < 1e-4
        assert body["model"] == body["result"]["model"]
        assert body["model"]["sha256"] == s.registry.entry("cls2d", "1")["sha256"]
        assert _actions(s.db, body["job_id"]) == [
            ("predict_submit", "accepted"),
            ("predict_result", "done"),
        ]
        # a 3D series becomes a job; its heatmap files are served to the submitter
        r = c.post(
            "/v1/predict/cls3d",
            files=upload(ct_series_bytes(tmp_path)),
            headers=t.header("service"),
        )
        assert r.status_code == 202, r.text
        assert r.json()["status_url"] == f"/v1/jobs/{r.json()['job_id']}"
        job = wait_for_job(c, r.json()["job_id"], t.header("service"))
        assert job["state"] == "done", job
        links = job["result"]["links"]
        assert "heatmap/heatmap.nii.gz" in links
        f = c.get(links["heatmap/heatmap.nii.gz"], headers=t.header("service"))
        assert f.status_code == 200 and f.content[:2] == b"\x1f\x8b"
        # segmentation of a zipped series: NIfTI mask, DICOM SEG on the de-identified series
        r = c.post(
            "/v1/predict/seg3d",
            files=[("files", ("study.zip", zip_bytes(ct_series_bytes(tmp_path, seed=1))))],
            headers=t.header("service"),
        )
        job = wait_for_job(c, r.json()["job_id"], t.header("clinician"))
        assert job["state"] == "done", job
        assert set(job["result"]["structures"]) == {"lung", "nodule"}
        seg_link = job["result"]["links"]["segmentation/segmentation.dcm"]
        seg_response = c.get(seg_link, headers=t.header("service"))
        assert seg_response.status_code == 200, seg_response.text
        seg = pydicom.dcmread(io.BytesIO(seg_response.content))
        stored = pydicom.dcmread(next((s.settings.data_dir / "uploads" / job["job_id"]).iterdir()))
        assert seg.Modality == "SEG" and seg.StudyInstanceUID == stored.StudyInstanceUID
        assert str(seg.PatientName) != CANARY_NAME and stored.PatientIdentityRemoved == "YES"
        assert "segmentation/segmentation.nii.gz" in job["result"]["links"]
        with s.db.session() as session:
            check = verify_chain(session)
            assert check.ok, check
            jobs = session.execute(select(Job)).scalars().all()
            assert {j.state for j in jobs} == {"done"} and len(jobs) == 3


def test_nifti_job_and_stored_copies_hold_no_identifiers(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        r = s.client.post(
            "/v1/predict/seg3d", files=upload([nifti_bytes()]), headers=s.tokens.header("service")
        )
        assert r.status_code == 202, r.text
        assert (
            wait_for_job(s.client, r.json()["job_id"], s.tokens.header("service"))["state"]
            == "done"
        )
        r = s.client.post(
            "/v1/predict/cls3d",
            files=upload(ct_series_bytes(tmp_path)),
            headers=s.tokens.header("service"),
        )
        wait_for_job(s.client, r.json()["job_id"], s.tokens.header("service"))
        for path in s.settings.data_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".gz":
                    import gzip

                    data = gzip.decompress(data)
                for canary in (CANARY_NAME, CANARY_ID, "Canarypatient"):
                    assert canary.encode() not in data, path


def test_model_and_input_must_match(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        c, h = s.client, s.tokens.header("clinician")
        r = c.post("/v1/predict/cls2d", files=upload(ct_series_bytes(tmp_path)), headers=h)
        assert r.status_code == 422 and "2D" in r.json()["error"]["message"]
        r = c.post("/v1/predict/cls3d", files=upload([png_bytes()]), headers=h)
        assert r.status_code == 422 and "3D" in r.json()["error"]["message"]
        assert not any((s.settings.data_dir / "uploads").iterdir())


def test_quarantined_dicom_is_refused_and_audited(tmp_path: Path) -> None:
    files = ct_series_bytes(tmp_path)
    ds = pydicom.dcmread(io.BytesIO(files[0]))
    ds.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    files[0] = buffer.getvalue()
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        r = s.client.post(
            "/v1/predict/cls3d", files=upload(files), headers=s.tokens.header("service")
        )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "quarantined"
        assert "burned_in_annotation" in r.json()["error"]["message"]
        assert not any((s.settings.data_dir / "uploads").iterdir())
        with s.db.session() as session:
            outcomes = (
                session.execute(
                    select(AuditRecord.outcome).where(AuditRecord.action == "predict_submit")
                )
                .scalars()
                .all()
            )
        assert outcomes == ["refused:quarantined"]


@pytest.mark.parametrize(
    ("files", "code", "status"),
    [
        ([b"not an image at all" * 20], "unsupported_media_type", 415),
        ([png_bytes(), png_bytes(seed=1)], "invalid_input", 422),
        ([b"\x89PNG\r\n\x1a\n" + b"\0" * 100], "invalid_input", 422),
    ],
)
def test_bad_uploads_get_json_errors(tmp_path: Path, files, code: str, status: int) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        r = s.client.post(
            "/v1/predict/cls2d", files=upload(files), headers=s.tokens.header("service")
        )
        assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_limits_are_checked_before_work(tmp_path: Path) -> None:
    with running_service(
        tmp_path,
        f"sqlite:///{tmp_path}/m.db",
        max_upload_bytes=200_000,
        max_files=5,
        max_decompressed_bytes=300_000,
        max_voxels=4_000,
    ) as s:
        c, h = s.client, s.tokens.header("service")
        series = ct_series_bytes(tmp_path)
        big = c.post(
            "/v1/predict/cls3d",
            content=b"x" * 300_000,
            headers={**h, "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
        many = c.post("/v1/predict/cls3d", files=upload(series[:6]), headers=h)
        assert many.status_code == 413
        bomb = zip_bytes([b"\0" * 200_000, b"\0" * 200_000])  # compresses to almost nothing
        r = c.post("/v1/predict/cls3d", files=[("files", ("a.zip", bomb))], headers=h)
        assert r.status_code == 413 and "expands" in r.json()["error"]["message"]
        r = c.post("/v1/predict/cls3d", files=upload(series[:3]), headers=h)  # 3 x 40 x 40 > 4000
        assert r.status_code == 413 and "voxels" in r.json()["error"]["message"]
        r = c.post("/v1/predict/cls3d", files=[("other", ("a.dcm", series[0]))], headers=h)
        assert r.status_code == 400 and "'files'" in r.json()["error"]["message"]
        r = c.post(
            "/v1/predict/cls3d", content=b"{}", headers={**h, "Content-Type": "application/json"}
        )
        assert r.status_code == 415


def test_unknown_retired_and_tampered_models_are_not_served(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        c, h = s.client, s.tokens.header("service")
        assert c.post("/v1/predict/nope", files=upload([png_bytes()]), headers=h).status_code == 404
        s.registry.retire("cls2d", "1")
        r = c.post("/v1/predict/cls2d:1", files=upload([png_bytes()]), headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        weights = s.settings.registry / "seg3d" / "1" / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
        r = c.post("/v1/predict/seg3d", files=upload(ct_series_bytes(tmp_path)), headers=h)
        assert r.status_code == 404 and "verification" in r.json()["error"]["message"]


def test_result_access_follows_ownership(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        c, t = s.client, s.tokens
        mine = c.post(
            "/v1/predict/cls2d", files=upload([png_bytes()]), headers=t.header("clinician")
        ).json()
        pacs = c.post(
            "/v1/predict/cls2d", files=upload([png_bytes()]), headers=t.header("service")
        ).json()
        can = {
            ("clinician", mine["job_id"]): 200,
            ("admin", mine["job_id"]): 200,
            ("clinician2", mine["job_id"]): 404,  # another clinician's upload
            ("service", mine["job_id"]): 404,
            ("clinician2", pacs["job_id"]): 200,  # studies the hospital's systems sent
            ("service", pacs["job_id"]): 200,
            ("clinician", "no-such-job"): 404,
        }
        for (role, job_id), status in can.items():
            assert c.get(f"/v1/jobs/{job_id}", headers=t.header(role)).status_code == status, role
        listed = c.get("/v1/jobs", headers=t.header("clinician2")).json()["jobs"]
        assert [j["job_id"] for j in listed] == [pacs["job_id"]]
        with s.db.session() as session:
            refused = (
                session.execute(
                    select(AuditRecord).where(
                        AuditRecord.action == "result_view", AuditRecord.outcome == "not_found"
                    )
                )
                .scalars()
                .all()
            )
        assert len(refused) == 3


def test_queue_full_and_rate_limit_answer_with_retry_after(tmp_path: Path) -> None:
    with running_service(
        tmp_path, f"sqlite:///{tmp_path}/m.db", start_worker=False, queue_max=1, rate_per_minute=4
    ) as s:
        c, h = s.client, s.tokens.header("service")
        series = ct_series_bytes(tmp_path)
        assert c.post("/v1/predict/cls3d", files=upload(series), headers=h).status_code == 202
        full = c.post("/v1/predict/cls3d", files=upload(series), headers=h)
        assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full"
        assert int(full.headers["Retry-After"]) > 0
        codes = [c.get("/v1/models", headers=h).status_code for _ in range(3)]
        assert codes[-1] == 429 and int(c.get("/v1/models", headers=h).headers["Retry-After"]) >= 1
        # other users have their own allowance
        assert c.get("/v1/models", headers=s.tokens.header("clinician")).status_code == 200


def test_audit_write_failure_fails_the_request(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        with s.db.write() as session:
            session.execute(
                text(
                    "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
            session.commit()
        r = s.client.post(
            "/v1/predict/cls2d", files=upload([png_bytes()]), headers=s.tokens.header("clinician")
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable"
        with s.db.session() as session:
            assert session.execute(select(Job)).scalars().all() == []
        assert not any((s.settings.data_dir / "uploads").iterdir())


def test_ops_routes(tmp_path: Path) -> None:
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db") as s:
        c, t = s.client, s.tokens
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz", headers=t.header("clinician"))
        assert ready.status_code == 200 and all(ready.json()["checks"].values())
        c.post("/v1/predict/cls2d", files=upload([png_bytes()]), headers=t.header("clinician"))
        text_body = c.get("/metrics", headers=t.header("service")).text
        for name in (
            'medsight_http_requests_total{method="POST",route="/v1/predict/{model}",'
            'status="200"} 1.0',
            "medsight_jobs_queued",
            'medsight_model_load_seconds{model="cls2d",version="1"}',
            "medsight_http_request_seconds_bucket",
        ):
            assert name in text_body
        models = c.get("/v1/models", headers=t.header("clinician")).json()["models"]
        assert {m["name"] for m in models} == {"cls2d", "cls3d", "seg3d"}
        schema = c.get("/openapi.json", headers=t.header("admin")).json()
        body = schema["paths"]["/v1/predict/{model}"]["post"]["requestBody"]
        assert "multipart/form-data" in body["content"]
        assert c.get("/nope", headers=t.header("admin")).json()["error"]["code"] == "not_found"
        assert json.loads(c.delete("/healthz").text)["error"]["code"] == "method_not_allowed"
