"""DICOMweb: STOW-RS into the DICOM node, WADO-RS of a job's de-identified results.

A STOW-RS request must end where a C-STORE ends: the series de-identified, routed, run,
and its result sent back to the PACS in the original study; the STOW answer says, per
instance, what was stored and what was refused and why. The results are read back over
WADO-RS by whoever may read the job. Bodies are written and read here by hand and by
`email` (not by the service's own multipart code), as an independent client would.
The last test has a real DICOMweb peer: Orthanc's DICOMweb plugin pushes a study to a
real service process and gets the segmentation back by C-STORE.
"""

from __future__ import annotations

import email
import email.policy
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import yaml
from dcmtk_tools import require_peers
from orthanc_server import HOST, OrthancError, running_orthanc
from service_kit import (
    CANARY_NAME,
    Service,
    ct_series_bytes,
    make_users,
    register_models,
    running_service,
)
from service_process import ServiceProcess, free_port, serve_args
from sqlalchemy import select
from test_dicom_node import SEG_CLASS, FakePacs, node_config, wait_until

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import AuditRecord, DicomSeries, Job, User

DICOM_JSON = "application/dicom+json"
BOUNDARY = "medsight-test-7f3a9c"
REFERENCED, FAILED = "00081199", "00081198"
SOP_INSTANCE, FAILURE_REASON = "00081155", "00081197"
SEG_ROUTE = {"model": "seg3d", "modality": ["CT"], "series_description": "(?i)chest"}


def stow_body(files: list[bytes], part_type: str = "application/dicom") -> tuple[bytes, dict]:
    """A STOW-RS body and its headers, as a DICOMweb client writes them."""
    chunks: list[bytes] = []
    for data in files:
        chunks += [f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    return b"".join(chunks), {"Content-Type": content_type}


def stow(service: Service, files: list[bytes], role: str = "service", **kwargs: Any):
    body, headers = stow_body(files, **kwargs)
    return service.client.post(
        "/dicomweb/studies", content=body, headers={**headers, **service.tokens.header(role)}
    )


def related_parts(response: httpx.Response) -> list[bytes]:
    """The parts of a multipart/related answer, read by the standard library's MIME parser."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + response.content, policy=email.policy.HTTP)
    assert message.get_content_type() == "multipart/related"
    assert message.get_param("type") == "application/dicom"
    parts = list(message.iter_parts())
    assert all(p.get_content_type() == "application/dicom" for p in parts)
    return [p.get_payload(decode=True) for p in parts]


def uids_of(response_body: dict, tag: str) -> list[str]:
    return [item[SOP_INSTANCE]["Value"][0] for item in response_body.get(tag, {}).get("Value", [])]


def sop_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)


def with_attribute(data: bytes, **values: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def audit_rows(service: Service, action: str) -> list[AuditRecord]:
    with service.db.session() as session:
        query = select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
        return list(session.execute(query).scalars().all())


@pytest.fixture
def pacs() -> Iterator[FakePacs]:
    server = FakePacs()
    yield server
    server.stop()


@pytest.mark.slow  # a 3D job end to end, then C-STORE of its results
def test_stow_series_is_routed_run_sent_and_its_seg_read_back(
    tmp_path: Path, pacs: FakePacs, database_url: str
) -> None:
    config = node_config(tmp_path, pacs.port, routes=[SEG_ROUTE])
    series = ct_series_bytes(tmp_path, slices=12, seed=5)
    original = pydicom.dcmread(io.BytesIO(series[0]))
    with running_service(tmp_path, database_url, dicom_config=config) as s:
        r = stow(s, series)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == DICOM_JSON
        assert sorted(uids_of(r.json(), REFERENCED)) == sorted(map(sop_uid, series))
        assert FAILED not in r.json()

        def done_job() -> Job | None:
            with s.db.session() as session:
                job = session.execute(select(Job)).scalar_one_or_none()
                return job if job is not None and job.state in ("done", "failed") else None

        wait_until(done_job, timeout=90)
        job = done_job()
        assert job is not None and job.state == "done" and job.model_name == "seg3d"
        with s.db.session() as session:
            row = session.execute(select(DicomSeries)).scalar_one()
            assert (row.calling_ae, row.instances, row.job_id) == ("DICOMWEB", 12, job.id)

        # the clinician reads the node's job; the de-identified SEG references the
        # de-identified series, never the original one
        r = s.client.get(f"/dicomweb/jobs/{job.id}/instances", headers=s.tokens.header("clinician"))
        assert r.status_code == 200, r.text
        (data,) = related_parts(r)
        assert CANARY_NAME.encode() not in data
        seg = pydicom.dcmread(io.BytesIO(data))
        assert seg.SOPClassUID == SEG_CLASS
        referenced = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        assert referenced == row.series_key != original.SeriesInstanceUID
        assert seg.StudyInstanceUID != original.StudyInstanceUID

        r = s.client.get(
            f"/dicomweb/jobs/{job.id}/instances/metadata", headers=s.tokens.header("clinician")
        )
        assert r.status_code == 200 and r.headers["content-type"] == DICOM_JSON
        (meta,) = r.json()
        assert meta["00080016"]["Value"] == [SEG_CLASS]  # SOPClassUID
        assert meta["00080018"]["Value"] == [seg.SOPInstanceUID]
        assert "7FE00010" not in meta and CANARY_NAME not in r.text

        # the job belongs to the account that sent the study; another clinician's is private
        r = s.client.get(f"/dicomweb/jobs/{job.id}/instances", headers=s.tokens.header("service"))
        assert r.status_code == 200
        with s.db.session() as session:
            sender = session.execute(select(User).where(User.name == "service")).scalar_one()
        assert job.user_id == sender.id

        # the PACS gets the identified copy by C-STORE, as for a series sent by C-STORE
        wait_until(lambda: len(pacs.received) == 1, timeout=30)
        sent = pacs.received[0]
        assert sent.SOPInstanceUID == seg.SOPInstanceUID  # same object, re-identified
        assert sent.StudyInstanceUID == original.StudyInstanceUID

        stores = audit_rows(s, "dicomweb_store")
        assert [(a.actor, a.outcome, a.target) for a in stores] == [
            ("service", "ok", "instances stored: 12 of 12")
        ]
        reads = [a for a in audit_rows(s, "result_view") if a.target.startswith(job.id)]
        assert [(a.actor, a.target, a.outcome) for a in reads] == [
            ("clinician", f"{job.id}/dicomweb/instances", "ok"),
            ("clinician", f"{job.id}/dicomweb/metadata", "ok"),
            ("service", f"{job.id}/dicomweb/instances", "ok"),
        ]
        with s.db.session() as session:
            assert verify_chain(session).ok


@pytest.fixture(scope="module")
def node_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose node routes MR only: CT series sent here are never run."""
    tmp = tmp_path_factory.mktemp("dicomweb")
    pacs = FakePacs()
    config = node_config(tmp, pacs.port, routes=[{"model": "cls3d", "modality": ["MR"]}])
    try:
        with running_service(
            tmp, f"sqlite:///{tmp}/m.db", dicom_config=config, max_files=20
        ) as service:
            yield service
    finally:
        pacs.stop()


def test_refused_instances_are_listed_with_their_reason(
    node_service: Service, tmp_path: Path
) -> None:
    s = node_service
    series = ct_series_bytes(tmp_path, slices=4, seed=11)
    burned = with_attribute(series[0], BurnedInAnnotation="YES")
    other_class = with_attribute(series[1], SOPClassUID="1.2.840.10008.5.1.4.1.1.7")
    files = [burned, other_class, b"not a DICOM file", *series[2:]]
    r = stow(s, files, role="clinician")
    assert r.status_code == 202, r.text
    body = r.json()
    assert sorted(uids_of(body, REFERENCED)) == sorted(map(sop_uid, series[2:]))
    failed = body[FAILED]["Value"]
    reasons = {
        item.get(SOP_INSTANCE, {}).get("Value", [""])[0]: item[FAILURE_REASON]["Value"][0]
        for item in failed
    }
    assert reasons == {sop_uid(burned): 0xC001, sop_uid(other_class): 0x0122, "": 0xC000}
    refused = [(a.actor, a.outcome) for a in audit_rows(s, "dicom_receive")][-3:]
    assert refused == [
        ("clinician", "refused:burned_in_annotation"),
        ("clinician", "refused:sop_class"),
        ("clinician", "refused:unreadable"),
    ]
    last = audit_rows(s, "dicomweb_store")[-1]
    assert (last.outcome, last.target) == ("partial", "instances stored: 2 of 5")

    # nothing stored at all: 409 Conflict, still with the per-instance reasons
    r = stow(s, [with_attribute(series[3], BurnedInAnnotation="YES")])
    assert r.status_code == 409, r.text
    assert r.json()[REFERENCED] == {"vr": "SQ", "Value": []}
    assert r.json()[FAILED]["Value"][0][FAILURE_REASON]["Value"] == [0xC001]
    assert audit_rows(s, "dicomweb_store")[-1].outcome == "refused"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [("admin", 403, "forbidden"), (None, 401, "unauthenticated")],
)
def test_stow_needs_a_clinician_or_service_account(
    node_service: Service, role: str | None, status: int, code: str
) -> None:
    body, headers = stow_body([b"x"])
    if role is not None:
        headers.update(node_service.tokens.header(role))
    r = node_service.client.post("/dicomweb/studies", content=body, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_malformed_requests_are_refused_whole(node_service: Service) -> None:
    s = node_service
    auth = s.tokens.header("service")
    body, headers = stow_body([b"x"])
    cases = [
        ({"Content-Type": "application/dicom"}, body, 415),
        (
            {"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=b'},
            body,
            415,
        ),
        (headers, body.replace(f"--{BOUNDARY}--".encode(), b""), 400),  # not closed
        (headers, f"--{BOUNDARY}--\r\n".encode(), 400),  # no part
        (headers, stow_body([b"x"] * 21)[0], 413),  # over max_files (20)
        (headers, stow_body([b"{}"], part_type="application/json")[0], 415),
    ]
    before = len(audit_rows(s, "dicomweb_store"))
    for extra, content, status in cases:
        r = s.client.post("/dicomweb/studies", content=content, headers={**extra, **auth})
        assert r.status_code == status, (extra, r.text)
        assert set(r.json()) == {"error"}
    outcomes = [a.outcome for a in audit_rows(s, "dicomweb_store")[before:]]
    assert outcomes == [
        "refused:unsupported_media_type",
        "refused:unsupported_media_type",
        "refused:bad_request",
        "refused:bad_request",
        "refused:payload_too_large",
        "refused:unsupported_media_type",
    ]


def _orthanc_style(files: list[bytes]) -> tuple[str, bytes]:
    """As Orthanc's DICOMweb plugin (1.7) writes: a 73-character boundary (RFC 2046 says at
    most 70), a Content-Length per part, no line break after the close delimiter."""
    boundary = "66d5a20f-ce29-4365-a81e-45eb664a7322-66d5a20f-ce29-4365-a81e-45eb664a7322"
    head = "--{}\r\nContent-Type: application/dicom\r\nContent-Length: {}\r\n\r\n"
    chunks = [head.format(boundary, len(f)).encode() + f + b"\r\n" for f in files]
    chunks.append(f"--{boundary}--".encode())
    return f'type="application/dicom"; boundary={boundary}', b"".join(chunks)


def _preamble_and_bare_parts(files: list[bytes]) -> tuple[str, bytes]:
    """A preamble and an epilogue, a quoted boundary, parts without headers (RFC 2046)."""
    parts = b"".join(b"\r\n--b 1\r\n\r\n" + f for f in files)
    return (
        'boundary="b 1"; type=application/dicom',
        b"preamble" + parts + b"\r\n--b 1--\r\nepilogue",
    )


@pytest.mark.parametrize("shape", [_orthanc_style, _preamble_and_bare_parts])
def test_stow_reads_bodies_as_peers_write_them(
    node_service: Service, tmp_path: Path, shape: Any
) -> None:
    series = ct_series_bytes(tmp_path, slices=2, seed=len(shape.__name__))
    params, body = shape(series)
    headers = {
        "Content-Type": f"multipart/related; {params}",
        **node_service.tokens.header("service"),
    }
    r = node_service.client.post("/dicomweb/studies", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert sorted(uids_of(r.json(), REFERENCED)) == sorted(map(sop_uid, series))


def _add_job(service: Service, state: str, input_kind: str) -> str:
    with service.db.write() as session:
        user = session.execute(select(User).where(User.name == "service")).scalar_one()
        job = Job(
            id=str(uuid.uuid4()),
            user_id=user.id,
            model_name="cls3d",
            model_version="1",
            model_sha256="0" * 64,
            input_kind=input_kind,
            input_sha256="0" * 64,
            state=state,
            result={"task": "classify"} if state == "done" else None,
        )
        session.add(job)
        session.commit()
        return job.id


@pytest.mark.parametrize(
    ("state", "input_kind", "says"),
    [("running", "dicom", "running"), ("failed", "dicom", "failed"), ("done", "png", "not DICOM")],
)
def test_jobs_without_dicom_results_answer_404_with_the_reason(
    node_service: Service, state: str, input_kind: str, says: str
) -> None:
    job_id = _add_job(node_service, state, input_kind)
    for path in ("instances", "instances/metadata"):
        r = node_service.client.get(
            f"/dicomweb/jobs/{job_id}/{path}", headers=node_service.tokens.header("service")
        )
        assert r.status_code == 404 and says in r.json()["error"]["message"], r.text


def test_stow_without_a_dicom_node_is_not_ready(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")  # no models: nothing is run here
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", registry=registry) as s:
        r = stow(s, ct_series_bytes(tmp_path, slices=1))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "not_ready"
        assert "--dicom-config" in r.json()["error"]["message"]
        assert [a.outcome for a in audit_rows(s, "dicomweb_store")] == ["refused:not_ready"]


@pytest.mark.slow
@pytest.mark.external
def test_orthanc_pushes_a_study_over_stow_and_files_the_seg(tmp_path: Path) -> None:
    """Orthanc's DICOMweb client is the sender; Orthanc's DICOM server gets the result."""
    require_peers(orthanc=True, dicomweb=True)
    node_port = free_port()
    series = ct_series_bytes(tmp_path, slices=12, seed=9)
    original = pydicom.dcmread(io.BytesIO(series[0]))
    with running_orthanc(modalities={"medsight": ("MEDSIGHT", HOST, node_port)}) as orthanc:
        config = tmp_path / "node.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "ae_title": "MEDSIGHT",
                    "port": node_port,
                    "quiet_seconds": 1.0,
                    "peers": [{"ae_title": "ORTHANC", "host": HOST, "port": orthanc.dicom_port}],
                    "destination": "ORTHANC",
                    "routes": [SEG_ROUTE],
                }
            )
        )
        register_models(tmp_path / "registry", tmp_path / "runs")
        database_url = f"sqlite:///{tmp_path}/medsight.db"
        db = Database(database_url)
        tokens = make_users(db)
        db.close()
        # by its environment variable: `medsight serve` drops its --dicom-config flag
        process = ServiceProcess.start(
            tmp_path / "process",
            *serve_args(tmp_path, database_url),
            env={"MEDSIGHT_DICOM_CONFIG": str(config)},
        )
        try:
            process.wait_healthy()
            orthanc.request(
                "PUT",
                "/dicom-web/servers/medsight",
                json={"Url": f"{process.url}/dicomweb/", "HttpHeaders": tokens.header("service")},
            )
            study_id = orthanc.upload_instances(series)[0].study_id
            started = time.monotonic()
            # Orthanc checks the STOW answer itself: an error status, a FailedSOPSequence
            # or a ReferencedSOPSequence short of 12 items fail this call
            try:
                orthanc.request(
                    "POST",
                    "/dicom-web/servers/medsight/stow",
                    json={"Resources": [study_id], "Synchronous": True},
                )
            except OrthancError as exc:
                raise AssertionError(
                    f"{exc}\nOrthanc:\n{orthanc.log_tail()}\nmedsight:\n{process.stderr()}"
                ) from None
            stow_s = time.monotonic() - started
            # the series closes, the job runs and the SEG comes back into the original study
            study = wait_until_seg(orthanc, original.StudyInstanceUID)
            with httpx.Client(base_url=process.url, timeout=30) as client:
                jobs = client.get("/v1/jobs", headers=tokens.header("clinician")).json()["jobs"]
                (job,) = jobs
                r = client.get(
                    f"/dicomweb/jobs/{job['job_id']}/instances",
                    headers=tokens.header("clinician"),
                )
            assert r.status_code == 200, r.text
            (data,) = related_parts(r)
            deidentified = pydicom.dcmread(io.BytesIO(data))
        finally:
            process.stop()
        assert stow_s < 30, f"the STOW of 12 instances took {stow_s:.1f} s"
        filed = [
            s
            for s in orthanc.series_of_study(study["ID"])
            if s["MainDicomTags"].get("Modality") == "SEG"
        ]
        (seg_series,) = filed
        (instance,) = orthanc.instances_of_series(seg_series["ID"])
        seg = pydicom.dcmread(io.BytesIO(orthanc.instance_file(instance["ID"])))
        assert seg.SOPInstanceUID == deidentified.SOPInstanceUID
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == original.SeriesInstanceUID
        assert deidentified.StudyInstanceUID != original.StudyInstanceUID
        assert str(seg.PatientName) == CANARY_NAME


def wait_until_seg(orthanc: Any, study_uid: str) -> dict:
    found: dict = {}

    def seg_filed() -> bool:
        for study in orthanc.find_studies_by_uid(study_uid):
            modalities = {
                s["MainDicomTags"].get("Modality") for s in orthanc.series_of_study(study["ID"])
            }
            if "SEG" in modalities:
                found.update(study)
                return True
        return False

    wait_until(seg_filed, timeout=90)
    return found
