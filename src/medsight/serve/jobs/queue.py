"""Jobs in the database: created with their audit record, claimed once, finished once.

A job moves ``queued`` -> ``running`` -> ``done`` | ``failed``. Claiming is a conditional
UPDATE (``WHERE state = 'queued'``), so two workers can never run the same job. A service
that starts finds the jobs its previous life left ``running`` (it was killed mid-job) and
queues them again; the result folder is written whole by each attempt and the job is
finished by a conditional UPDATE (``WHERE state = 'running'``), so a job re-run after a kill
ends with one result and one completion record, not two. A job that has been claimed
`MAX_ATTEMPTS` times without finishing (it kills the process each time) is failed instead
of retried forever.

One service process per database runs jobs (the recovery on start assumes it owns every
running job); more API processes could share the database, with their worker disabled.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from medsight.serve.store.audit import AuditEvent, append, job_fields
from medsight.serve.store.schema import Job, utcnow

MAX_ATTEMPTS = 3
ACTIVE = ("queued", "running")


def new_job_id() -> str:
    return str(uuid.uuid4())


def active_jobs(session: Session) -> int:
    """Jobs queued or running."""
    return int(
        session.execute(
            select(func.count()).select_from(Job).where(Job.state.in_(ACTIVE))
        ).scalar_one()
    )


def any_queued(session: Session) -> bool:
    """Whether a job waits (a read, so idle workers never take the write lock)."""
    return session.execute(select(Job.id).where(Job.state == "queued").limit(1)).first() is not None


def recover_interrupted(session: Session) -> int:
    """Queue again the jobs left running by a killed process (or fail those out of attempts).

    Returns:
        How many jobs were queued again.
    """
    stuck = session.execute(select(Job).where(Job.state == "running")).scalars().all()
    requeued = 0
    for job in stuck:
        if job.attempts >= MAX_ATTEMPTS:
            job.state, job.finished = "failed", utcnow()
            job.error_code = "internal"
            job.error_message = f"the job stopped the service {job.attempts} times; gave up"
        else:
            job.state, job.started = "queued", None
            requeued += 1
    return requeued


def claim_next(session: Session) -> Job | None:
    """Claim the oldest queued job (the caller commits), or None when none is queued."""
    candidates = session.execute(
        select(Job.id).where(Job.state == "queued").order_by(Job.created).limit(5)
    ).scalars()
    for job_id in list(candidates):
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="running", started=utcnow(), attempts=Job.attempts + 1)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(Job, job_id, populate_existing=True)
    return None


def finish(
    session: Session,
    job_id: str,
    actor: str,
    role: str,
    result: dict[str, Any] | None,
    error: tuple[str, str] | None = None,
) -> bool:
    """Mark a running job done (``result``) or failed (``error`` = code, message), audited.

    Returns:
        False when the job was not running (already finished): nothing is changed.
    """
    state = "failed" if error else "done"
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "running")
        .values(
            state=state,
            finished=utcnow(),
            result=result,
            error_code=error[0] if error else None,
            error_message=error[1] if error else None,
        )
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    append(
        session,
        AuditEvent(
            actor=actor,
            role=role,
            action="predict_result",
            outcome=state if not error else f"failed:{error[0]}",
            target=job.id,
            **job_fields(job),
        ),
    )
    return True
