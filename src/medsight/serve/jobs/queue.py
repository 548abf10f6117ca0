"""Jobs in the database: created with their audit record, claimed under a lease, finished once.

A job moves ``queued`` -> ``running`` -> ``done`` | ``failed``. Job state lives only in the
database, so any number of worker threads and processes, on any number of machines, can
share one PostgreSQL database (SQLite: the processes of one machine).

Claiming takes the oldest queued job with ``SELECT ... FOR UPDATE SKIP LOCKED`` (workers
never wait for each other's rows; on SQLite the same statements run inside the write lock
that ``BEGIN IMMEDIATE`` takes) and stamps a fresh lease token, the worker's id and a
heartbeat; every claim is audited (``job_attempt``), so the trail shows each attempt. While it
works, the worker refreshes ``heartbeat_at`` (`heartbeat`); it finishes the job only if its
lease token is still the job's (`finish`), so a worker that lost its lease (frozen, cut off
from the database, presumed dead) changes nothing when it comes back.

Any worker runs `reap_stalled` now and then: a running job whose heartbeat is older than the
stall time is queued again (audited ``job_requeue``), or failed with the reason once it has
been claimed ``max_attempts`` times. Several reapers at once are safe: each takes the stalled
rows with SKIP LOCKED and changes them with their lease in the WHERE clause. Execution is at
least once, completion exactly once.

Times compared across machines come from the database's clock on PostgreSQL (``now()``), so
the workers' clocks need not agree; SQLite is one machine, one clock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from medsight.serve.store.audit import AuditEvent, append, job_fields
from medsight.serve.store.schema import Job, User, utcnow

ACTIVE = ("queued", "running")
#: a running job without a lease was started by an API request that answers synchronously
#: (2D images, records, notes); it is taken back only when it has run this long
UNLEASED_STALL_S = 600.0


def new_job_id() -> str:
    return str(uuid.uuid4())


def db_now(session: Session) -> dt.datetime:
    """The time on the database's clock (PostgreSQL), or this machine's (SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(select(func.now())).scalar_one()
    return utcnow()


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


def claim_next(session: Session, worker_id: str) -> Job | None:
    """Claim the oldest queued job under a fresh lease (the caller commits), or None.

    The returned job carries its ``lease_token``: the worker passes it to `heartbeat` and
    `finish`.
    """
    job_id = session.execute(
        select(Job.id)
        .where(Job.state == "queued")
        .order_by(Job.created)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if job_id is None:
        return None
    now = db_now(session)
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "queued")
        .values(
            state="running",
            started=now,
            heartbeat_at=now,
            lease_token=str(uuid.uuid4()),
            worker_id=worker_id[:64],
            attempts=Job.attempts + 1,
        )
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    append(
        session,
        AuditEvent(
            actor=worker_id[:64],
            role="system",
            action="job_attempt",
            outcome=f"claimed:{job.attempts}",
            target=job.id,
            **job_fields(job),
        ),
    )
    return job


def heartbeat(session: Session, job_id: str, lease_token: str) -> bool:
    """Refresh the heartbeat of a job this worker holds (the caller commits).

    Returns:
        False when the lease is lost (the job was taken back or finished): stop beating.
    """
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_token == lease_token, Job.state == "running")
        .values(heartbeat_at=db_now(session))
    )
    return changed.rowcount == 1  # type: ignore[attr-defined]


@dataclass
class Reaped:
    """What one `reap_stalled` round did: job ids queued again and failed for good."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def reap_stalled(session: Session, stall_s: float, max_attempts: int) -> Reaped:
    """Take back the running jobs whose worker stopped heartbeating (the caller commits).

    A job claimed fewer than ``max_attempts`` times is queued again; one claimed that often
    is failed (``stalled``) with the reason, and its completion audited.
    """
    now = db_now(session)
    seen = func.coalesce(Job.heartbeat_at, Job.started)
    stalled = (
        session.execute(
            select(Job)
            .where(
                Job.state == "running",
                or_(
                    and_(Job.lease_token.is_not(None), seen < now - dt.timedelta(seconds=stall_s)),
                    and_(
                        Job.lease_token.is_(None),
                        Job.started < now - dt.timedelta(seconds=max(stall_s, UNLEASED_STALL_S)),
                    ),
                ),
            )
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    reaped = Reaped()
    for job in stalled:
        if job.attempts >= max_attempts:
            owner = session.get(User, job.user_id)
            job.state, job.finished, job.lease_token = "failed", now, None
            job.error_code = "stalled"
            job.error_message = (
                f"the job's worker stopped {job.attempts} times (no heartbeat for "
                f"{stall_s:g} s); gave up"
            )
            append(
                session,
                AuditEvent(
                    actor=owner.name if owner else "unknown",
                    role=owner.role if owner else "",
                    action="predict_result",
                    outcome="failed:stalled",
                    target=job.id,
                    **job_fields(job),
                ),
            )
            reaped.failed.append(job.id)
        else:
            job.state, job.started, job.heartbeat_at = "queued", None, None
            job.lease_token, job.worker_id = None, None
            append(
                session,
                AuditEvent(
                    actor="system",
                    role="system",
                    action="job_requeue",
                    outcome=f"stalled:{job.attempts}",
                    target=job.id,
                    **job_fields(job),
                ),
            )
            reaped.requeued.append(job.id)
    session.flush()
    return reaped


def finish(
    session: Session,
    job_id: str,
    actor: str,
    role: str,
    result: dict[str, Any] | None,
    error: tuple[str, str] | None = None,
    lease_token: str | None = None,
    publish: Callable[[], None] | None = None,
) -> bool:
    """Mark a running job done (``result``) or failed (``error`` = code, message), audited.

    Args:
        lease_token: the lease the caller claimed the job under; None for a job an API
            request runs while its client waits (it has no lease).
        publish: called once the job's row is held, before the audit record: moves the
            result files into place (a rename). A caller whose lease is lost never calls it.

    Returns:
        False when the job is not running under ``lease_token`` (finished already, or taken
        back from this worker): nothing is changed and ``publish`` is not called.
    """
    state = "failed" if error else "done"
    lease = Job.lease_token.is_(None) if lease_token is None else Job.lease_token == lease_token
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "running", lease)
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
    if publish is not None:
        publish()
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
