"""EHR risk through the service: one patient's record in, a calibrated risk out at once.

The model is the stand-in of `ehr_kit` (the route, storage, de-identification, audit and
viewer are under test here, not the network; `test_ehr_real_run` serves a trained run).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from ehr_kit import (
    CALIBRATION_NOTE,
    CANARY_BIRTH,
    EHR_CANARIES,
    HBA1C,
    add_fake_risk_model,
    canary_bundle,
    meds_rows_body,
    use_fake_risk_task,
)
from service_kit import Service, png_bytes, register_models, running_service, upload
from sqlalchemy import select

from medsight.ehr.deid import deidentify_bundle, deidentify_meds_rows
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.deidentified_input import RECORD_FILE
from medsight.serve.store.schema import AuditRecord, Job
from medsight.tasks.results import RiskResult, parse_result

FHIR = {"Content-Type": "application/fhir+json"}
JSON = {"Content-Type": "application/json"}
RECORD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("ehr")
    registry = register_models(tmp / "registry", tmp / "runs")
    add_fake_risk_model(registry, tmp / "runs")
    with pytest.MonkeyPatch.context() as patch:
        use_fake_risk_task(patch)
        with running_service(
            tmp,
            f"sqlite:///{tmp}/medsight.db",
            registry=registry,
            max_record_bytes=RECORD_LIMIT,
            max_upload_bytes=4 * RECORD_LIMIT,
        ) as service:
            yield service


def post(s: Service, body: object, headers: dict, role: str = "clinician", model: str = "risk"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return s.client.post(
        f"/v1/predict/{model}", content=content, headers={**s.tokens.header(role), **headers}
    )


def audit_of(s: Service, target: str) -> list[tuple[str, str, str]]:
    with s.db.session() as session:
        rows = session.execute(
            select(AuditRecord).where(AuditRecord.target == target).order_by(AuditRecord.seq)
        ).scalars()
        return [(r.action, r.outcome, r.input_sha256) for r in rows]


def key_of(s: Service) -> str:
    return (s.settings.data_dir / "deid.key").read_text().strip()


def test_a_fhir_bundle_is_answered_at_once_with_a_calibrated_risk(ehr: Service) -> None:
    r = post(ehr, canary_bundle(), FHIR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "done"
    result = parse_result(body["result"])
    assert isinstance(result, RiskResult)
    assert result.calibration == CALIBRATION_NOTE and result.threshold == 0.5
    assert 0 <= result.probability <= 1 and result.refer is (result.probability >= 0.5)
    assert (
        result.model is not None
        and result.model.sha256 == ehr.registry.entry("risk", "1")["sha256"]
    )
    # the model saw the de-identified record: dates moved by the patient's keyed offset
    clean = deidentify_bundle(canary_bundle(), key_of(ehr))
    assert 30 <= abs(clean.offset_days) <= 365
    last = dt.datetime.fromisoformat(HBA1C[-1][0]).astimezone(dt.UTC).replace(tzinfo=None)
    assert result.prediction_time == last + dt.timedelta(days=clean.offset_days)
    # intervals are kept: the two HbA1c values are as far apart as in the original
    first = dt.datetime.fromisoformat(HBA1C[0][0]).astimezone(dt.UTC).replace(tzinfo=None)
    hours = [c.hours_before for c in result.contributions if c.code == "LOINC//4548-4"]
    assert sorted(hours) == [0.0, (last - first).total_seconds() / 3600]
    # audited as image predictions are, with the de-identified record's hash
    assert body["input_sha256"] == clean.sha256()
    assert audit_of(ehr, body["job_id"]) == [
        ("predict_submit", "accepted", clean.sha256()),
        ("predict_result", "done", clean.sha256()),
    ]
    # the job's input is the de-identified MEDS rows; birth shifted, so age is kept exactly
    with ehr.db.session() as session:
        job = session.get(Job, body["job_id"])
        assert job is not None and job.input_kind == "fhir"
    rows = pq.read_table(ehr.settings.data_dir / "uploads" / body["job_id"] / RECORD_FILE)
    stored = rows.to_pylist()
    assert {r["subject_id"] for r in stored} == {clean.subject_id}
    (birth,) = [r["time"] for r in stored if r["code"] == "MEDS_BIRTH"]
    assert birth == dt.datetime.fromisoformat(CANARY_BIRTH) + dt.timedelta(days=clean.offset_days)
    assert stored[0]["time"] is None  # static rows first, then by time
    assert sorted(stored[1:], key=lambda r: r["time"]) == stored[1:]
    # the result file is listed and served to the submitter
    link = body["result"]["links"]["explanation.json"]
    assert ehr.client.get(link, headers=ehr.tokens.header("clinician")).status_code == 200


def test_the_same_patient_always_gets_the_same_shift_and_pseudonym(ehr: Service) -> None:
    a = post(ehr, canary_bundle(), FHIR).json()
    b = post(ehr, canary_bundle(), {"Content-Type": "application/fhir+json; charset=utf-8"})
    assert b.status_code == 200, b.text
    assert a["input_sha256"] == b.json()["input_sha256"]
    assert a["result"]["prediction_time"] == b.json()["result"]["prediction_time"]
    # another patient (another MRN) is shifted by another offset
    other = canary_bundle()
    other["entry"][0]["resource"]["identifier"][0]["value"] = "ANOTHER-MRN-1"
    key = key_of(ehr)
    offsets = {
        deidentify_bundle(canary_bundle(), key).offset_days,
        deidentify_bundle(other, key).offset_days,
    }
    assert len(offsets) == 2


def test_meds_rows_as_json_are_de_identified_and_predicted(ehr: Service) -> None:
    r = post(ehr, meds_rows_body(), JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    clean = deidentify_meds_rows(meds_rows_body(), key_of(ehr))
    assert body["input_sha256"] == clean.sha256()
    stored = pq.read_table(
        ehr.settings.data_dir / "uploads" / body["job_id"] / RECORD_FILE
    ).to_pylist()
    assert {r["subject_id"] for r in stored} == {clean.subject_id} != {77731}
    assert all(r["text_value"] is None for r in stored)
    assert body["result"]["task"] == "ehr-risk"
    # a bundle sent as plain JSON is read as a bundle
    r = post(ehr, canary_bundle(), JSON)
    assert r.status_code == 200, r.text


BAD_RECORDS = [
    (b"{not json", FHIR, 422, "not valid JSON"),
    (b"\xff\xfe{}", JSON, 422, "not valid JSON"),
    (b'{"events": [{"time": NaN, "code": "LOINC//1"}]}', JSON, 422, "not valid JSON"),
    (json.dumps({"resourceType": "Patient", "id": "x"}).encode(), FHIR, 422, "not a FHIR R4"),
    (json.dumps([1, 2]).encode(), FHIR, 422, "not a FHIR R4"),
    (json.dumps(canary_bundle(extra_patient=True)).encode(), FHIR, 422, "one patient"),
    (
        json.dumps(
            meds_rows_body() | {"events": meds_rows_body()["events"] + meds_rows_body(5)["events"]}
        ).encode(),
        JSON,
        422,
        "one patient",
    ),
    (
        json.dumps({"events": [{"time": "yesterday", "code": "LOINC//1"}]}).encode(),
        JSON,
        422,
        "event 0: time",
    ),
    (
        json.dumps({"events": [{"time": None, "code": "no vocabulary"}]}).encode(),
        JSON,
        422,
        "event 0: code",
    ),
    (
        json.dumps({"events": [{"code": "LOINC//1", "numeric_value": "7"}]}).encode(),
        JSON,
        422,
        "numeric_value",
    ),
    (json.dumps({"events": []}).encode(), JSON, 422, "empty"),
    (b"", FHIR, 422, "empty"),
    (
        json.dumps(
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "Patient", "id": "p", "gender": 7}}],
            }
        ).encode(),
        FHIR,
        422,
        "invalid FHIR Patient",
    ),
    (b"[" * 100_000 + b"]" * 100_000, JSON, 422, "not valid JSON"),
    (b"x" * (RECORD_LIMIT + 1), FHIR, 413, "limited to"),
    (json.dumps(canary_bundle()).encode(), {"Content-Type": "text/plain"}, 415, "takes one"),
]


@pytest.mark.parametrize(("content", "headers", "status", "says"), BAD_RECORDS)
def test_bad_records_get_a_json_error_that_echoes_nothing(
    ehr: Service, content: bytes, headers: dict, status: int, says: str
) -> None:
    with ehr.db.session() as session:
        before = session.execute(select(Job)).scalars().all()
    r = post(ehr, content, headers)
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"]
    assert says in message, message
    assert not [c for c in EHR_CANARIES if c.lower() in r.text.lower()]
    with ehr.db.session() as session:
        assert len(session.execute(select(Job)).scalars().all()) == len(before)
        last = session.execute(select(AuditRecord).order_by(AuditRecord.seq.desc())).scalar()
        assert last is not None and last.action == "predict_submit"
        assert last.outcome.startswith("refused:") and last.model_name == "risk"
    assert not any(p for p in (ehr.settings.data_dir / "uploads").iterdir() if not p.is_dir())


def test_a_2_gb_upload_is_refused_before_it_is_read(ehr: Service) -> None:
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(64):  # at most 64 MiB would be sent; the service reads none of it
            sent.append(1)
            yield b"{" * 2**20

    r = ehr.client.post(
        "/v1/predict/risk",
        content=body(),
        headers={**ehr.tokens.header("clinician"), **FHIR, "Content-Length": str(2 * 2**30)},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    # streamed without a length: cut off at the record limit
    chunks = (b" " * 65536 for _ in range(2 * 2**30 // 65536))
    r = ehr.client.post(
        "/v1/predict/risk", content=chunks, headers={**ehr.tokens.header("clinician"), **FHIR}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    assert len(sent) < 64


def test_records_and_images_go_to_their_own_models(ehr: Service) -> None:
    h = ehr.tokens.header("clinician")
    r = ehr.client.post("/v1/predict/risk", files=upload([png_bytes()]), headers=h)
    assert r.status_code == 415 and "FHIR" in r.json()["error"]["message"]
    r = post(ehr, canary_bundle(), FHIR, model="cls2d")
    assert r.status_code == 415 and "images" in r.json()["error"]["message"]
    # roles as for images: an admin does not predict, no token is 401
    assert post(ehr, canary_bundle(), FHIR, role="admin").status_code == 403
    r = ehr.client.post("/v1/predict/risk", content=b"{}", headers=FHIR)
    assert r.status_code == 401
    with ehr.db.session() as session:
        assert verify_chain(session).ok


def test_the_worklist_and_viewer_show_the_risk_and_its_events(ehr: Service) -> None:
    h = ehr.tokens.header("clinician")
    job = post(ehr, canary_bundle(), FHIR).json()
    items = ehr.client.get("/v1/worklist", headers=h).json()["items"]
    (item,) = [i for i in items if i["job_id"] == job["job_id"]]
    assert item["task"] == "ehr-risk"
    probability = job["result"]["probability"]
    assert item["summary"].startswith(f"risk {probability:.0%}")
    assert ("refer" in item["summary"]) is job["result"]["refer"] is item["refer"]
    meta = ehr.client.get(f"/v1/jobs/{job['job_id']}/viewer", headers=h).json()
    assert meta["task"] == "ehr-risk" and "image_error" not in meta
    assert meta["layers"] == {"image": False, "mask": False, "heatmap": False}
    result = meta["result"]
    assert result["calibration"] == CALIBRATION_NOTE
    assert result["contributions"][0]["code"] == "LOINC//4548-4"
    assert {"risk", "probability", "refer", "threshold", "prediction_time"} <= set(result)
    assert meta["model_card"].startswith("# ehr risk")
    # the image routes have nothing to give for a record
    r = ehr.client.get(f"/v1/jobs/{job['job_id']}/viewer/image", headers=h)
    assert r.status_code == 404, r.text


def test_a_record_model_version_is_registered_with_its_calibration(ehr: Service) -> None:
    folder = ehr.registry.verified_path("risk", "1")
    assert (folder / "calibration.json").is_file()
