"""The canary test: patient identifiers planted in uploads never leave the upload.

Every synthetic upload carries the canary patient (name, ID, accession number, birth date)
in its DICOM header, PNG text chunk, NIfTI description, zip member names and multipart file
names. Uploads of every kind, accepted and refused, go through the service; then every log
record (all loggers at DEBUG), everything written to stdout/stderr, every response (status,
headers, body, result files), every stored file and the database must be free of them.
The last test does the same against a real ``medsight serve`` process and its console output.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nibabel as nib
import pydicom
import pytest
from PIL import Image
from service_kit import (
    CANARY_ID,
    CANARY_NAME,
    Service,
    Tokens,
    ct_series_bytes,
    identity,
    make_users,
    nifti_bytes,
    png_bytes,
    register_models,
    running_service,
    upload,
    wait_for_job,
    zip_bytes,
)
from service_process import ServiceProcess, serve_args
from sqlalchemy import select

from medsight.serve.store.audit import record_dict
from medsight.serve.store.database import Database
from medsight.serve.store.schema import AuditRecord

MIB = 2**20
CANARIES = (
    CANARY_NAME,
    *CANARY_NAME.split("^"),
    CANARY_ID,
    identity().accession_number,
    identity().birth_date,
)
UPLOAD_LIMIT = 4 * MIB
#: loggers of the tests' HTTP client: they log the URLs the test sends, not the service's
CLIENT_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2")


def leaks(data: bytes | str) -> list[str]:
    """The canaries found in ``data`` (case-insensitive)."""
    raw = (data.encode("utf-8", "replace") if isinstance(data, str) else data).lower()
    return [c for c in CANARIES if c.lower().encode() in raw]


def stored_leaks(root: Path) -> dict[str, list[str]]:
    """Canaries in the files under ``root``, gzip members read decompressed."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if hit := leaks(data):
            found[str(path.relative_to(root))] = hit
    return found


def quarantined_series(tmp: Path) -> list[bytes]:
    files = ct_series_bytes(tmp, slices=4, seed=5)
    ds = pydicom.dcmread(io.BytesIO(files[0]))
    ds.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return [buffer.getvalue(), *files[1:]]


def named(data: bytes, suffix: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f"{CANARY_NAME} {CANARY_ID}{suffix}", data))]


@dataclass
class Refused:
    """A request that must be refused with ``status``; ``role`` None sends no token."""

    url: str
    status: int | tuple[int, ...]
    files: list | None = None
    content: bytes | Iterator[bytes] | None = None
    content_type: str | None = None
    role: str | None = "clinician"

    def send(self, client: httpx.Client, tokens: Tokens) -> httpx.Response:
        headers = tokens.header(self.role) if self.role else {}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        return client.post(self.url, files=self.files, content=self.content, headers=headers)

    def expected(self, response: httpx.Response) -> bool:
        allowed = self.status if isinstance(self.status, tuple) else (self.status,)
        return response.status_code in allowed


def refused_requests(tmp: Path) -> list[Refused]:
    """Uploads that must be refused, each with the canaries in its file names and contents."""
    blob = (CANARY_NAME + CANARY_ID).encode() * 64
    oversize = (CANARY_NAME.encode() * (UPLOAD_LIMIT // len(CANARY_NAME) + 16))[: UPLOAD_LIMIT + 1]
    # the same multipart body sent in chunks, without a Content-Length
    form = httpx.Request("POST", "http://service", files=named(oversize, ".dcm"))
    body = form.read()

    def streamed() -> Iterator[bytes]:
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]

    return [
        Refused("/v1/predict/cls3d", 422, upload(quarantined_series(tmp))),
        # malformed: broken DICOM, PNG, zip and NIfTI, a body not multipart, a broken multipart
        Refused("/v1/predict/cls3d", 422, named(b"\0" * 128 + b"DICM" + blob, ".dcm")),
        Refused("/v1/predict/cls2d", 422, named(b"\x89PNG\r\n\x1a\n" + blob, ".png")),
        Refused("/v1/predict/cls3d", 422, named(b"PK\x03\x04" + blob, ".zip")),
        Refused("/v1/predict/seg3d", 422, named(b"\x1f\x8b" + blob, ".nii.gz")),
        Refused("/v1/predict/cls3d", 415, content=blob, content_type="text/plain"),
        Refused(
            "/v1/predict/cls3d",
            400,
            content=blob,
            content_type=f"multipart/form-data; boundary={CANARY_ID}",
        ),
        # over the upload limit: declared up front, and streamed without a length
        Refused("/v1/predict/cls3d", 413, named(oversize, ".dcm")),
        Refused(
            "/v1/predict/cls3d",
            413,
            content=streamed(),
            content_type=form.headers["Content-Type"],
        ),
        # an unknown model, a role that may not predict, no token, a bad query value
        Refused("/v1/predict/no-such-model", 404, upload([png_bytes()])),
        Refused("/v1/predict/cls2d", 403, upload([png_bytes()]), role="admin"),
        Refused("/v1/predict/cls2d", 401, upload([png_bytes()]), role=None),
        Refused(f"/v1/predict/cls3d?heatmap={CANARY_ID}", 422, upload(ct_series_bytes(tmp))),
    ]


def accepted_uploads(tmp: Path) -> list[tuple[str, str, list]]:
    """``(role, model, multipart files)`` for uploads of every kind that must be served."""
    series = ct_series_bytes(tmp)
    return [
        ("clinician", "cls3d", upload(series)),
        ("service", "seg3d", named(zip_bytes(ct_series_bytes(tmp, seed=1)), ".zip")),
        ("clinician", "cls2d", named(png_bytes(), ".png")),
        ("clinician", "seg3d", named(nifti_bytes(), ".nii.gz")),
    ]


def fetch_results(client: httpx.Client, role_header: dict[str, str], first: httpx.Response) -> None:
    """Wait for the job of a 200/202 answer to finish, then fetch every result file."""
    body = first.json()
    if first.status_code == 202:
        body = wait_for_job(client, body["job_id"], role_header, timeout=120)
    assert body["state"] == "done", body
    for link in body["result"]["links"].values():
        got = client.get(link, headers=role_header)
        assert got.status_code == 200, (link, got.text)


def response_text(response: httpx.Response) -> bytes:
    """Status, headers and body (decompressed when it is a gzip file, as NIfTI results are)."""
    response.read()
    head = f"{response.status_code}\n" + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    body = response.content
    return head.encode() + (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)


def service_log(records: list[logging.LogRecord]) -> str:
    """The captured log records as text, tracebacks included, less the test's own client."""
    formatter = logging.Formatter()
    lines = []
    for record in records:
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            continue
        lines.append(f"{record.name} {record.levelname} {record.getMessage()}")
        if record.exc_info:
            lines.append(formatter.formatException(record.exc_info))
    return "\n".join(lines)


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog, with the root and every logger created so far at DEBUG (restored after)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_identifiers_stay_out_of_logs_responses_and_storage(
    tmp_path: Path,
    every_logger_at_debug: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    inputs = tmp_path / "inputs"  # the canary files themselves live here, outside the service
    work = tmp_path / "service"
    with running_service(work, f"sqlite:///{work}/medsight.db", max_upload_bytes=UPLOAD_LIMIT) as s:
        responses: list[httpx.Response] = []
        s.client.event_hooks["response"].append(responses.append)
        for role, model, files in accepted_uploads(inputs):
            r = s.client.post(f"/v1/predict/{model}", files=files, headers=s.tokens.header(role))
            assert r.status_code in (200, 202), (model, r.text)
            fetch_results(s.client, s.tokens.header(role), r)
        for refused in refused_requests(inputs):
            r = refused.send(s.client, s.tokens)
            assert refused.expected(r), (refused.url, r.text)
        data_dir = s.settings.data_dir

    # the stored copies were de-identified, not merely renamed
    stored = data_dir / "uploads"
    dicoms = list(stored.rglob("*.dcm"))
    assert len(dicoms) == 24  # two 12-slice series; refused uploads left nothing
    for path in dicoms:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES" and str(ds.PatientName) != CANARY_NAME
    (png,) = stored.rglob("image.png")
    with Image.open(png) as image:
        assert image.text == {}
    (nifti,) = stored.rglob("image.nii.gz")
    header = nib.load(nifti).header
    assert header["descrip"].item() == b"" and not header.extensions

    everything = {
        "log records": service_log(every_logger_at_debug.records),
        "stdout/stderr": "".join(capfd.readouterr()),
        "responses": b"\n".join(response_text(r) for r in responses),
    }
    # the captures did see the traffic, so an empty capture cannot pass this test
    assert len(responses) > 30
    assert "POST /v1/predict/{model} 202" in everything["log records"]
    assert "INSERT INTO audit_log" in everything["log records"]  # SQL and its parameters too
    for where, text in everything.items():
        assert not leaks(text), f"canary in {where}: {leaks(text)}"
    assert (work / "medsight.db").is_file() and (work / "data").is_dir()
    assert stored_leaks(work) == {}  # uploads, results, the database, the registry


# ---------------------------------------------------------------- the real process


@pytest.mark.slow  # starts a real service process
def test_service_process_console_holds_no_identifiers(tmp_path: Path) -> None:
    inputs, work = tmp_path / "inputs", tmp_path / "service"
    database_url = f"sqlite:///{work}/medsight.db"
    work.mkdir()
    register_models(work / "registry", work / "runs")
    db = Database(database_url)
    tokens = make_users(db)
    db.close()
    process = ServiceProcess.start(
        tmp_path / "process",
        *serve_args(work, database_url),
        env={"MEDSIGHT_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)},
    )
    try:
        process.wait_healthy()
        responses: list[httpx.Response] = []
        hooks = {"response": [responses.append]}
        with httpx.Client(base_url=process.url, timeout=60.0, event_hooks=hooks) as client:
            for role, model, files in accepted_uploads(inputs)[:3]:
                r = client.post(f"/v1/predict/{model}", files=files, headers=tokens.header(role))
                assert r.status_code in (200, 202), (model, r.text)
                fetch_results(client, tokens.header(role), r)
            for refused in refused_requests(inputs):
                r = refused.send(client, tokens)
                assert refused.expected(r), (refused.url, r.text)
            r = client.post("/v1/login", json={"name": CANARY_NAME, "password": CANARY_ID})
            assert r.status_code == 401 and not leaks(response_text(r))
    finally:
        process.stop()
    stdout, stderr = process.output_bytes()
    # the console did get the request log, so an empty capture cannot pass this test
    for line in (b"POST /v1/predict/{model} 202", b"POST /v1/predict/{model} 422"):
        assert line in stderr, stderr[-2000:]
    assert not leaks(stdout) and not leaks(stderr), (leaks(stdout), leaks(stderr))
    assert len(responses) > 20
    assert not leaks(b"\n".join(response_text(r) for r in responses))
    assert stored_leaks(work) == {}


# ---------------------------------------------------------------- known defects


@pytest.fixture(scope="module")
def small_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("known-defects")
    with running_service(
        tmp, f"sqlite:///{tmp}/medsight.db", max_upload_bytes=UPLOAD_LIMIT
    ) as service:
        yield service


def test_a_name_typed_into_login_is_not_logged(
    small_service: Service, every_logger_at_debug: pytest.LogCaptureFixture
) -> None:
    r = small_service.client.post("/v1/login", json={"name": CANARY_NAME, "password": CANARY_ID})
    assert r.status_code == 401 and not leaks(response_text(r))
    log = service_log(every_logger_at_debug.records)
    assert "INSERT INTO audit_log" in log  # SQL logging was on
    assert not leaks(log), leaks(log)


def test_text_typed_into_job_urls_stays_out_of_the_audit_trail(small_service: Service) -> None:
    s, h = small_service, small_service.tokens.header("clinician")
    job = s.client.post("/v1/predict/cls2d", files=upload([png_bytes()]), headers=h).json()
    assert job["state"] == "done", job
    for url in (f"/v1/jobs/{CANARY_ID}", f"/v1/jobs/{job['job_id']}/files/{CANARY_NAME}"):
        r = s.client.get(url, headers=h)
        assert r.status_code == 404 and not leaks(response_text(r)), url
    with s.db.session() as session:
        audit = [record_dict(r) for r in session.execute(select(AuditRecord)).scalars()]
    assert any(r["action"] == "result_view" for r in audit)
    assert not leaks(repr(audit)), leaks(repr(audit))


def test_a_streamed_upload_over_the_limit_is_413(small_service: Service) -> None:
    form = httpx.Request("POST", "http://service", files=named(b"\0" * (UPLOAD_LIMIT + 1), ""))
    body = form.read()
    r = small_service.client.post(
        "/v1/predict/cls3d",
        content=(body[i : i + MIB] for i in range(0, len(body), MIB)),  # no Content-Length
        headers={
            **small_service.tokens.header("clinician"),
            "Content-Type": form.headers["Content-Type"],
        },
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
