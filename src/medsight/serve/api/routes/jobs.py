"""``GET /v1/jobs/{id}`` and its files: a job's state and result, for those who may read it.

Every read of a result (the JSON or a file) is audited (``result_view``) before it is
answered. Files are served only by the names the result lists, so no path can leave the
job's result folder.
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from medsight.serve.api.errors import ApiError
from medsight.serve.api.state import client_address, service_state
from medsight.serve.auth.dependencies import Principal, require
from medsight.serve.jobs.job_view import job_json, readable_job, readable_jobs
from medsight.serve.jobs.worker import result_dir
from medsight.serve.store.audit import AuditEvent, append, commit_audited, job_fields
from medsight.serve.store.schema import Job

router = APIRouter()
Reader = Annotated[Principal, Depends(require("admin", "clinician", "service"))]
MEDIA = {".nii.gz": "application/gzip", ".dcm": "application/dicom", ".json": "application/json"}


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def audited_read(request: Request, principal: Principal, job_id: str, file: str = "") -> Job:
    """The job ``principal`` may read, with a ``result_view`` audit record committed first.

    ``file`` names what is read (a listed result file, a viewer layer); it becomes part of
    the record's target, never text typed into the URL.

    Raises:
        ApiError: ``not_found`` (audited too) when the job does not exist or may not be read.
    """
    state = service_state(request)
    with state.db.write() as session:
        try:
            job = readable_job(session, job_id, principal)
        except ApiError:
            append(
                session,
                AuditEvent(
                    actor=principal.name,
                    role=principal.role,
                    action="result_view",
                    outcome="not_found",
                    client=client_address(request),
                    target=job_id if _is_uuid(job_id) else "(not a job id)",
                ),
            )
            commit_audited(session)
            raise
        append(
            session,
            AuditEvent(
                actor=principal.name,
                role=principal.role,
                action="result_view",
                outcome="ok",
                client=client_address(request),
                **job_fields(job),
                # a file name the result lists, never text typed into the URL
                target=f"{job.id}/{file}" if file else job.id,
            ),
        )
        commit_audited(session)
    return job


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request, principal: Reader) -> dict[str, Any]:
    """A job's state and, once done, its result with links to its files."""
    return job_json(audited_read(request, principal, job_id))


@router.get("/v1/jobs/{job_id}/files/{name:path}")
def get_job_file(job_id: str, name: str, request: Request, principal: Reader) -> FileResponse:
    """One file of a finished job's result (heatmap PNG/NIfTI, mask NIfTI, DICOM SEG, ...)."""
    state = service_state(request)
    with state.db.session() as session:
        job = session.get(Job, job_id) if _is_uuid(job_id) else None
        listed = job is not None and name in (job.result or {}).get("files", [])
    job = audited_read(request, principal, job_id, name if listed else "")
    if not listed:
        raise ApiError("not_found", "no such file in this job's result")
    path = result_dir(service_state(request).settings.data_dir, job.id) / name
    if not path.is_file():
        raise ApiError("not_found", "the file is no longer stored")
    media = next((m for s, m in MEDIA.items() if name.endswith(s)), None)
    media = media or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, filename=path.name)


@router.get("/v1/jobs")
def list_jobs(request: Request, principal: Reader, limit: int = 50) -> dict[str, Any]:
    """The newest jobs the caller may read (ids, states, models; no results)."""
    state = service_state(request)
    limit = max(1, min(limit, 500))
    with state.db.session() as session:
        jobs = session.execute(readable_jobs(principal, limit)).scalars().all()
    return {"jobs": [{k: v for k, v in job_json(j).items() if k not in ("result",)} for j in jobs]}
