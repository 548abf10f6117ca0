"""``POST /v1/predict/{model}``: upload an image or a patient's record, get a result or a job.

Images: the upload is read in memory under the limits (`upload_parts`), de-identified and
stored (`deidentified_input`); the original is never written. A single 2D image (one
PNG/JPEG, one single-frame DICOM, a one-slice NIfTI) is predicted while the client waits,
within `SyncSlots`; anything else becomes a job for the worker (202 + ``status_url``).

Records (models of a record task, e.g. ``ehr-risk``): one patient's FHIR R4 Bundle
(``application/fhir+json``) or MEDS rows (``application/json``, ``{"events": [...]}``), read
under the record limit (`record_body`), de-identified, converted to MEDS rows and stored
(`deidentified_record`), then predicted while the client waits, as a 2D image is.

Notes (models of a text task, ``text-classify`` or ``text-ner``): ``text/plain`` (its
``charset`` honoured), a FHIR DocumentReference or DiagnosticReport
(``application/fhir+json``) or an HL7 v2 ORU^R01 message (``application/hl7-v2+er7``,
``x-application/hl7-v2+er7``) holding one note, read under the record limit, de-identified
(surrogates, dates shifted per patient) and stored as text (`deidentified_text`), then
predicted while the client waits; the result is a `TextResult`.

Every submission, accepted or refused, has an audit record committed before the answer.
Roles: clinician and service (admins manage users and models; they do not predict).
"""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from medsight.errors import InputError
from medsight.serve.api.errors import ApiError
from medsight.serve.api.record_body import media_type, read_record_body
from medsight.serve.api.state import ServiceState, client_address, service_state
from medsight.serve.api.upload_parts import read_upload
from medsight.serve.auth.dependencies import Principal, require
from medsight.serve.jobs.inference import run_prediction
from medsight.serve.jobs.job_view import job_json
from medsight.serve.jobs.model_cache import LoadedModel
from medsight.serve.jobs.queue import active_jobs, finish, new_job_id
from medsight.serve.jobs.worker import clean_message, result_dir
from medsight.serve.store.audit import AuditEvent, append, commit_audited
from medsight.serve.store.deidentified_input import StoredInput, store_deidentified
from medsight.serve.store.deidentified_record import RECORD_MEDIA, store_record
from medsight.serve.store.deidentified_text import store_text
from medsight.serve.store.schema import Job, utcnow
from medsight.text.io.read_notes import is_text_media_type

router = APIRouter()
Submitter = Annotated[Principal, Depends(require("clinician", "service"))]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/fhir+json": {
                "schema": {
                    "type": "object",
                    "description": "record models: one patient's FHIR R4 Bundle; text "
                    "models: one DocumentReference or DiagnosticReport",
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "description": "record models: one patient's MEDS rows, "
                    '{"events": [{"time", "code", "numeric_value"}, ...]}',
                }
            },
            "text/plain": {
                "schema": {"type": "string", "description": "text models: one clinical note"}
            },
            "application/hl7-v2+er7": {
                "schema": {
                    "type": "string",
                    "description": "text models: an HL7 v2 ORU^R01 message with one report",
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "DICOM files of one series (or a zip of them), "
                            "or one NIfTI, PNG or JPEG",
                        }
                    },
                }
            },
        },
    }
}


def _audit_submission(
    state: ServiceState,
    principal: Principal,
    request: Request,
    model: LoadedModel | None,
    outcome: str,
    job: Job | None = None,
) -> None:
    with state.db.write() as session:
        if job is not None:
            session.add(job)
        append(
            session,
            AuditEvent(
                actor=principal.name,
                role=principal.role,
                action="predict_submit",
                outcome=outcome,
                client=client_address(request),
                model_name=model.name if model else "",
                model_version=model.version if model else "",
                model_sha256=model.sha256 if model else "",
                input_sha256=job.input_sha256 if job else "",
                target=job.id if job else "",
            ),
        )
        commit_audited(session)


async def _stored(
    state: ServiceState, request: Request, principal: Principal, model: LoadedModel, job_id: str
) -> StoredInput:

    dest = state.settings.data_dir / "uploads" / job_id
    try:
        if media_type(request) in RECORD_MEDIA:
            raise ApiError(
                "unsupported_media_type",
                f"model {model.name}:{model.version} takes images: send multipart/form-data",
            )
        files = await read_upload(request, state.settings)
        stored = await run_in_threadpool(
            store_deidentified, files, dest, state.deid_policy, state.settings
        )
        del files
        if (stored.slices == 1) != model.is_2d():
            wanted = "a single 2D image" if model.is_2d() else "a 3D series or volume"
            raise ApiError("invalid_input", f"model {model.name}:{model.version} takes {wanted}")
        return stored
    except ApiError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        _audit_submission(state, principal, request, model, f"refused:{exc.code}")
        raise


async def _stored_record(
    state: ServiceState, request: Request, principal: Principal, model: LoadedModel, job_id: str
) -> StoredInput:
    dest = state.settings.data_dir / "uploads" / job_id
    try:
        media = media_type(request)
        if media not in RECORD_MEDIA:
            raise ApiError(
                "unsupported_media_type",
                f"model {model.name}:{model.version} takes one patient's record: send a FHIR "
                "R4 Bundle as application/fhir+json or MEDS rows as application/json",
            )
        body = await read_record_body(request, state.settings)
        stored = await run_in_threadpool(store_record, body, media, dest, state.deid_policy.key)
        del body
        return stored
    except ApiError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        _audit_submission(state, principal, request, model, f"refused:{exc.code}")
        raise


async def _stored_note(
    state: ServiceState, request: Request, principal: Principal, model: LoadedModel, job_id: str
) -> StoredInput:
    dest = state.settings.data_dir / "uploads" / job_id
    try:
        content_type = request.headers.get("content-type", "")
        if not is_text_media_type(content_type):
            raise ApiError(
                "unsupported_media_type",
                f"model {model.name}:{model.version} takes one clinical note: send text/plain, "
                "a FHIR DocumentReference or DiagnosticReport as application/fhir+json, or an "
                "HL7 v2 ORU^R01 message as application/hl7-v2+er7",
            )
        body = await read_record_body(request, state.settings)
        stored = await run_in_threadpool(
            store_text, body, content_type, dest, state.deid_policy.key
        )
        del body
        return stored
    except ApiError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        _audit_submission(state, principal, request, model, f"refused:{exc.code}")
        raise


async def _answer_now(
    state: ServiceState,
    principal: Principal,
    request: Request,
    loaded: LoadedModel,
    job: Job,
    stored: StoredInput,
    heatmap: bool,
) -> JSONResponse:
    """Predict while the client waits (within `SyncSlots`): the finished job's JSON."""
    async with state.sync_slots:
        job.state, job.attempts, job.started = "running", 1, utcnow()
        try:
            _audit_submission(state, principal, request, loaded, "accepted", job)
        except ApiError:
            shutil.rmtree(state.settings.data_dir / "uploads" / job.id, ignore_errors=True)
            raise
        out = result_dir(state.settings.data_dir, job.id)
        result, error = None, None
        try:
            result = await run_in_threadpool(
                run_prediction, loaded, stored.path, out, state.metrics, heatmap
            )
        except InputError as exc:
            error = ("invalid_input", clean_message(str(exc), state.settings.data_dir))
    with state.db.write() as session:
        finish(session, job.id, principal.name, principal.role, result, error)
        commit_audited(session)
        fresh = session.get(Job, job.id, populate_existing=True)
    state.metrics.jobs.labels("failed" if error else "done").inc()
    if error is not None:
        raise ApiError(error[0], error[1])
    assert fresh is not None
    return JSONResponse(status_code=200, content=job_json(fresh))


def _job(job_id: str, principal: Principal, loaded: LoadedModel, stored: StoredInput) -> Job:
    return Job(
        id=job_id,
        user_id=principal.user_id,
        model_name=loaded.name,
        model_version=loaded.version,
        model_sha256=loaded.sha256,
        input_kind=stored.kind,
        input_sha256=stored.sha256,
    )


@router.post(
    "/v1/predict/{model}",
    openapi_extra=UPLOAD_BODY,
    responses={202: {"description": "a job was queued (3D input)"}},
)
async def predict(
    model: str,
    request: Request,
    principal: Submitter,
    heatmap: bool = Query(True, description="3D classification: also write a Grad-CAM heatmap"),
) -> JSONResponse:
    """Predict one input with a registered model (``NAME`` or ``NAME:VERSION``).

    An image model takes a multipart upload; a record model one patient's record (FHIR R4
    Bundle or MEDS rows JSON) and answers at once with the job, its ``result`` a `RiskResult`;
    a text model one note (plain text, FHIR DocumentReference/DiagnosticReport, HL7 v2 ORU)
    and answers at once, its ``result`` a `TextResult`.
    """
    state = service_state(request)
    cache = state.models
    try:
        name, version = cache.resolve(model)
        loaded: LoadedModel = await run_in_threadpool(cache.get, name, version)
    except ApiError as exc:
        _audit_submission(state, principal, request, None, f"refused:{exc.code}")
        raise
    job_id = new_job_id()
    if loaded.takes_records():
        stored = await _stored_record(state, request, principal, loaded, job_id)
        job = _job(job_id, principal, loaded, stored)
        return await _answer_now(state, principal, request, loaded, job, stored, heatmap=False)
    if loaded.takes_text():
        stored = await _stored_note(state, request, principal, loaded, job_id)
        job = _job(job_id, principal, loaded, stored)
        return await _answer_now(state, principal, request, loaded, job, stored, heatmap=False)
    stored = await _stored(state, request, principal, loaded, job_id)
    job = _job(job_id, principal, loaded, stored)
    if stored.slices > 1:
        with state.db.session() as session:
            depth = active_jobs(session)
        if depth >= state.settings.queue_max:
            shutil.rmtree(state.settings.data_dir / "uploads" / job_id, ignore_errors=True)
            _audit_submission(state, principal, request, loaded, "refused:queue_full")
            raise ApiError(
                "queue_full", "the job queue is full; retry later", {"Retry-After": "30"}
            )
        job.state = "queued"
        try:
            _audit_submission(state, principal, request, loaded, "queued", job)
        except ApiError:
            shutil.rmtree(state.settings.data_dir / "uploads" / job_id, ignore_errors=True)
            raise
        state.worker.notify()
        state.metrics.queue_depth.set(depth + 1)
        return JSONResponse(
            status_code=202,
            content={**job_json(job), "status_url": f"/v1/jobs/{job.id}"},
        )
    return await _answer_now(state, principal, request, loaded, job, stored, heatmap)
