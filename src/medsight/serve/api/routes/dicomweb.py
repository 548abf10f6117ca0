"""DICOMweb (PS3.18): STOW-RS into the DICOM node, WADO-RS of a job's DICOM results.

``POST /dicomweb/studies`` (STOW-RS) takes ``multipart/related; type="application/dicom"``,
one DICOM Part 10 instance per part, and hands each instance to the DICOM node's
`StorageReceiver`, exactly as a C-STORE is handed: screened for burned-in text
(quarantine), size-checked, de-identified in memory and added to its series, which
`series_assembly` closes after the quiet period, routes by the node's rules and queues as a
job (whose results go back to the node's destination by C-STORE, as for any series). Only
the storage SOP classes the node negotiates are accepted. Without a node (no
``--dicom-config``) there are no routing rules, so it answers 503 ``not_ready``. The answer
is the PS3.18 store response (``application/dicom+json``): ReferencedSOPSequence for the
instances stored, FailedSOPSequence with a FailureReason for the others, the same status
codes a C-STORE gets (C001 quarantined, C002 too large, C003 series already closed, A700
out of resources), plus C000 for a part that is not a readable DICOM file and 0122 for a SOP
class the node does not take; HTTP 200 when every instance was stored, 202 when some
were, 409 when none (PS3.18 10.5.3). Each request leaves one ``dicomweb_store`` audit
record (``ok``, ``partial``, ``refused`` or ``refused:CODE``) and, like the C-STORE path,
one ``dicom_receive`` record per refused instance, committed before the answer.
Roles: clinician and service, as for ``POST /v1/predict``.

Results are read under their job, not under studies:

- ``GET /dicomweb/jobs/{job_id}/instances`` (WADO-RS): ``multipart/related;
  type="application/dicom"``, the job's DICOM results: its SEG, or its SR (made on first
  request, as the sender makes it), plus the heatmap Secondary Capture when the node is
  configured to send one.
- ``GET /dicomweb/jobs/{job_id}/instances/metadata``: their headers as
  ``application/dicom+json``, without pixel data.

Why under the job and not QIDO-RS over studies: the service stores de-identified data
only, so the results reference the de-identified study and series, whose UIDs are keyed
hashes of the originals that no client knows. The identified copies exist only in memory
while they are sent to the PACS by C-STORE; the PACS is where results are found by study.
A job is also the unit of access: these routes admit whoever may read the job
(`job_view.readable_job`; a job the node queued belongs to its service account, so
clinicians can read it) and audit every read (``result_view``), as the job's other files do.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import pydicom
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydicom.dataset import Dataset

from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.serve.api.body_limit import BodyTooLarge
from medsight.serve.api.errors import ApiError
from medsight.serve.api.routes.jobs import Reader, audited_read
from medsight.serve.api.routes.predict import Submitter
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.api.state import client_address, service_state
from medsight.serve.auth.dependencies import Principal
from medsight.serve.dicom.dicomweb_multipart import (
    MultipartError,
    Part,
    TooManyParts,
    new_boundary,
    parse_media_type,
    related_body,
    split_related,
)
from medsight.serve.dicom.receiver import (
    STORAGE_CLASSES,
    StorageReceiver,
)
from medsight.serve.dicom.sender import SendError, result_objects
from medsight.serve.store.audit import AuditEvent, append, commit_audited

log = logging.getLogger("medsight.serve")
router = APIRouter()

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
#: the calling AE title recorded for series that arrive over DICOMweb
CALLING_AE = "DICOMWEB"
#: FailureReason (0008,1197) values beyond the receiver's C-STORE statuses
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
ACCEPTED_CLASSES = frozenset(str(uid) for uid in STORAGE_CLASSES)
#: Float/Double Float Pixel Data and Pixel Data: left out of metadata (bulk data)
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
TAG_FAILED_SOP_SEQUENCE = "00081198"
TAG_REFERENCED_SOP_SEQUENCE = "00081199"


@dataclass
class StoreReport:
    """What became of each instance of one STOW request."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: audit outcome of each refused instance (``refused:REASON`` or ``error``)
    refusals: list[str] = field(default_factory=list)

    def outcome(self) -> str:
        if not self.failed:
            return "ok"
        return "partial" if self.stored else "refused"

    def status(self) -> int:
        if not self.failed:
            return 200
        return 202 if self.stored else 409

    def body(self) -> dict[str, Any]:
        """The store response dataset in the DICOM JSON model (PS3.18 F.2)."""
        body: dict[str, Any] = {TAG_REFERENCED_SOP_SEQUENCE: {"vr": "SQ", "Value": self.stored}}
        if self.failed:
            body[TAG_FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": self.failed}
        return body


def _sop_item(sop_class: str, sop_instance: str, failure: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_instance:
        item["00081155"] = {"vr": "UI", "Value": [sop_instance]}
    if failure is not None:
        item["00081197"] = {"vr": "US", "Value": [failure]}
    return item


def _store_one(
    receiver: StorageReceiver, part: Part, address: str, owner_id: int
) -> tuple[str, str, int, str]:
    """Store one part; ``(SOP class, SOP instance, failure status or 0, audit outcome)``."""
    sop_class = sop_instance = ""
    try:
        with pydicom_silenced():
            ds = pydicom.dcmread(io.BytesIO(part.content))
            sop_class = str(ds.get("SOPClassUID", "") or "")
            sop_instance = str(ds.get("SOPInstanceUID", "") or "")
    except Exception:  # pydicom raises many types for a file it cannot read
        return sop_class, sop_instance, CANNOT_UNDERSTAND, "refused:unreadable"
    if not sop_instance:
        return sop_class, sop_instance, CANNOT_UNDERSTAND, "refused:unreadable"
    if sop_class not in ACCEPTED_CLASSES:
        return sop_class, sop_instance, SOP_CLASS_NOT_SUPPORTED, "refused:sop_class"
    with pydicom_silenced():
        status, outcome = receiver.store(ds, CALLING_AE, address, owner_id=owner_id)
    return sop_class, sop_instance, status, outcome


def _store_all(
    receiver: StorageReceiver,
    parts: list[Part],
    address: str,
    metrics: ServiceMetrics,
    owner_id: int,
) -> StoreReport:
    report = StoreReport()
    for part in parts:
        sop_class, sop_instance, failure, outcome = _store_one(receiver, part, address, owner_id)
        if outcome in ("refused:unreadable", "refused:sop_class"):  # never reached the node
            metrics.dicom_received.labels("refused").inc()
        if failure:
            report.failed.append(_sop_item(sop_class, sop_instance, failure))
            report.refusals.append(outcome)
        else:
            report.stored.append(_sop_item(sop_class, sop_instance))
    return report


def _audit_store(
    request: Request, principal: Principal, outcome: str, report: StoreReport | None = None
) -> None:
    client = client_address(request)
    with service_state(request).db.write() as session:
        for refusal in report.refusals if report is not None else []:
            append(
                session,
                AuditEvent(
                    actor=principal.name,
                    role=principal.role,
                    action="dicom_receive",
                    outcome=refusal,
                    client=f"{CALLING_AE}@{client}"[:64],
                ),
            )
        target = ""
        if report is not None:
            total = len(report.stored) + len(report.failed)
            target = f"instances stored: {len(report.stored)} of {total}"
        append(
            session,
            AuditEvent(
                actor=principal.name,
                role=principal.role,
                action="dicomweb_store",
                outcome=outcome,
                client=client,
                target=target,
            ),
        )
        commit_audited(session)


def _request_parts(content_type: str, body: bytes, max_parts: int) -> list[Part]:
    """The parts of a STOW-RS body, each declared (or defaulting to) application/dicom.

    Raises:
        ApiError: not multipart/related of application/dicom (415), malformed (400), no
            parts (400) or more than ``max_parts`` (413).
    """
    media = parse_media_type(content_type)
    declared = media.params.get("type", DICOM).lower()
    if media.media_type != "multipart/related" or declared != DICOM:
        raise ApiError(
            "unsupported_media_type",
            f'send multipart/related; type="{DICOM}" with one DICOM file per part',
        )
    boundary = media.params.get("boundary", "")
    try:
        parts = split_related(body, boundary, max_parts)
    except TooManyParts:
        raise ApiError("payload_too_large", f"over {max_parts} instances in one request") from None
    except MultipartError as exc:
        raise ApiError("bad_request", f"the multipart/related body cannot be read: {exc}") from None
    if not parts:
        raise ApiError("bad_request", "the multipart/related body holds no instances")
    if any(part.media_type not in ("", DICOM) for part in parts):
        raise ApiError(
            "unsupported_media_type",
            f"every part must be {DICOM} (metadata and bulk data parts are not accepted)",
        )
    return parts


@router.post(
    "/dicomweb/studies",
    responses={
        202: {"description": "some instances were stored, some failed"},
        409: {"description": "no instance was stored"},
    },
)
async def store_instances(request: Request, principal: Submitter) -> JSONResponse:
    """STOW-RS: store DICOM instances through the DICOM node (de-identified, routed, run)."""
    state = service_state(request)
    node = state.dicom_node
    try:
        if node is None:
            raise ApiError(
                "not_ready",
                "STOW-RS needs the DICOM node: start the service with --dicom-config, "
                "whose routing rules pick each series' model",
            )
        body = await request.body()
        parts = _request_parts(
            request.headers.get("content-type", ""), body, state.settings.max_files
        )
    except ApiError as exc:
        await run_in_threadpool(_audit_store, request, principal, f"refused:{exc.code}")
        raise
    except BodyTooLarge:
        await run_in_threadpool(_audit_store, request, principal, "refused:payload_too_large")
        raise
    report = await run_in_threadpool(
        _store_all,
        node.receiver,
        parts,
        client_address(request),
        state.metrics,
        principal.user_id,  # the series, and its job, belong to the sender
    )
    del parts, body  # the originals: not kept a moment longer than needed
    await run_in_threadpool(_audit_store, request, principal, report.outcome(), report)
    return JSONResponse(status_code=report.status(), content=report.body(), media_type=DICOM_JSON)


def _results(request: Request, principal: Principal, job_id: str, what: str) -> list[Dataset]:
    """The de-identified DICOM results of a job the principal may read (read audited).

    Raises:
        ApiError: ``not_found`` for a job that does not exist, may not be read, has not
            finished, failed, or has no DICOM result (its input was not DICOM).
    """
    job = audited_read(request, principal, job_id, f"dicomweb/{what}")
    if job.state != "done":
        ended = job.state == "failed"
        raise ApiError(
            "not_found",
            "the job failed: it has no results"
            if ended
            else f"the job is {job.state}: its results come once it is done",
        )
    if job.input_kind != "dicom":
        raise ApiError("not_found", "the job's input was not DICOM: it has no DICOM results")
    state = service_state(request)
    node = state.dicom_node
    heatmap = node is not None and node.config.send_heatmap
    try:
        return result_objects(job, state.settings.data_dir, heatmap)
    except SendError:
        raise ApiError("not_found", "this job has no DICOM result") from None


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with pydicom_silenced():
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _metadata(ds: Dataset) -> dict[str, Any]:
    header = Dataset()
    for element in ds:
        if element.tag not in PIXEL_TAGS:
            header.add(element)
    with pydicom_silenced():
        return header.to_json_dict()


@router.get("/dicomweb/jobs/{job_id}/instances")
def retrieve_results(job_id: str, request: Request, principal: Reader) -> Response:
    """WADO-RS: a finished job's DICOM results (SEG or SR), de-identified."""
    datasets = _results(request, principal, job_id, "instances")
    parts = [
        (f"{DICOM}; transfer-syntax={ds.file_meta.TransferSyntaxUID}", _part10(ds))
        for ds in datasets
    ]
    boundary = new_boundary([content for _, content in parts])
    return Response(
        content=related_body(parts, boundary),
        media_type=f'multipart/related; type="{DICOM}"; boundary={boundary}',
    )


@router.get("/dicomweb/jobs/{job_id}/instances/metadata")
def retrieve_metadata(job_id: str, request: Request, principal: Reader) -> JSONResponse:
    """WADO-RS metadata: the headers of a finished job's DICOM results, no pixel data."""
    datasets = _results(request, principal, job_id, "metadata")
    return JSONResponse([_metadata(ds) for ds in datasets], media_type=DICOM_JSON)
