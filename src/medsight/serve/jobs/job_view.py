"""Who may see a job, and the JSON a client gets for it.

A job's result can be read by its submitter, by an admin, and by a clinician when the job
came from a service account (studies the hospital's systems sent for reading). A clinician
cannot read another clinician's uploads. A job a principal may not read answers 404, the
same as a job that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from medsight.serve.api.errors import ApiError
from medsight.serve.auth.dependencies import Principal
from medsight.serve.store.schema import Job, User
from medsight.tasks.results import AnyResult, parse_result


def _iso(at: dt.datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.isoformat(timespec="seconds")


def readable_job(session: Session, job_id: str, principal: Principal) -> Job:
    """The job, if ``principal`` may read it.

    Raises:
        ApiError: ``not_found`` when it does not exist or may not be read.
    """
    job = session.get(Job, job_id) if len(job_id) <= 36 else None
    if job is not None:
        if principal.role == "admin" or job.user_id == principal.user_id:
            return job
        if principal.role == "clinician":
            owner = session.get(User, job.user_id)
            if owner is not None and owner.role == "service":
                return job
    raise ApiError("not_found", "no such job")


def readable_jobs(principal: Principal, limit: int) -> Select[Job]:
    """The query of the newest jobs ``principal`` may read (the rule of `readable_job`)."""
    query = select(Job).order_by(Job.created.desc()).limit(limit)
    if principal.role == "clinician":
        service_ids = select(User.id).where(User.role == "service")
        query = query.where((Job.user_id == principal.user_id) | Job.user_id.in_(service_ids))
    elif principal.role != "admin":
        query = query.where(Job.user_id == principal.user_id)
    return query


def job_json(job: Job) -> dict[str, Any]:
    """The client's view of ``job``: state, model, times, result with file links, error."""
    body: dict[str, Any] = {
        "job_id": job.id,
        "state": job.state,
        "model": {
            "name": job.model_name,
            "version": job.model_version,
            "sha256": job.model_sha256,
        },
        "input_sha256": job.input_sha256,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
    }
    if job.result is not None:
        result = dict(job.result)
        result["links"] = {
            name: f"/v1/jobs/{job.id}/files/{name}" for name in result.get("files", [])
        }
        body["result"] = result
    if job.error_code:
        body["error"] = {"code": job.error_code, "message": job.error_message}
    return body


def stored_result(
    result: dict[str, Any] | None,
) -> AnyResult | None:
    """A job's stored result as its typed record (None when absent or not a known record)."""
    if not result:
        return None
    try:
        return parse_result(result)
    except ValidationError:
        return None
