"""Close received series after a quiet period, route each to a model, and queue its job.

A series is complete when no instance has arrived for ``quiet_seconds`` (DICOM has no
"end of series" message). The routing rules (`NodeConfig.route`) pick the model from the
original series' modality, body part, description and slice count. The series folder
becomes the job's input (a rename, so the de-identified files are never copied) and the job
joins the same queue as HTTP jobs, submitted by the node's service account with an audit
record naming the calling AE. A series no rule matches is audited as ``unrouted`` and its
files and re-identification record are erased. While the job queue is full, series wait.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from medsight.serve.api.errors import ApiError
from medsight.serve.dicom.config import NodeConfig
from medsight.serve.dicom.receiver import NODE_ACTOR, incoming_dir
from medsight.serve.jobs.model_cache import ModelCache
from medsight.serve.jobs.queue import active_jobs, new_job_id
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import Database
from medsight.serve.store.deidentified_input import folder_digest
from medsight.serve.store.reidentification import unseal
from medsight.serve.store.schema import Delivery, DicomSeries, Job, User, utcnow


def node_user(session: Session) -> User:
    """The service account DICOM jobs are submitted by (made on first use, no tokens)."""
    user = session.execute(select(User).where(User.name == NODE_ACTOR)).scalar_one_or_none()
    if user is None:
        user = User(name=NODE_ACTOR, role="service")
        session.add(user)
        session.flush()
        append(
            session,
            AuditEvent(
                actor="system", role="system", action="user_add", outcome="ok", target=NODE_ACTOR
            ),
        )
    return user


def close_quiet_series(
    db: Database,
    config: NodeConfig,
    cache: ModelCache,
    data_dir: Path,
    record_key: bytes,
    queue_max: int,
    now: dt.datetime | None = None,
) -> list[str]:
    """Route every series quiet for ``quiet_seconds``; returns the ids of the jobs queued."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=config.quiet_seconds)
    queued: list[str] = []
    quiet = select(DicomSeries).where(
        DicomSeries.state == "receiving", DicomSeries.last_received < cutoff
    )
    with db.session() as session:  # a read first: an idle node never takes the write lock
        if session.execute(quiet.limit(1)).first() is None:
            return []
    with db.write() as session:
        rows = (
            session.execute(
                # a series another node is closing (or still receiving into) is skipped,
                # not waited for: each series has one owner, the node that locked its row
                quiet.order_by(DicomSeries.first_received).with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if not rows:
            return []
        user = node_user(session)
        depth = active_jobs(session)
        moved: list[tuple[Path, Path]] = []
        try:
            for row in rows:
                client = f"{row.calling_ae}@{row.client}"[:64]
                assert row.reidentification is not None
                record = unseal(row.reidentification, record_key)
                ref = config.route(
                    row.modality, row.body_part, record["series_description"], row.instances
                )
                source = incoming_dir(data_dir, row.series_key)
                model = None
                if ref is not None:
                    try:
                        name, version = cache.resolve(ref)
                        model = (name, version, cache.registry.entry(name, version)["sha256"])
                    except ApiError:
                        model = None
                if model is None:
                    row.state, row.reidentification = "unrouted", None
                    shutil.rmtree(source, ignore_errors=True)
                    append(
                        session,
                        AuditEvent(
                            actor=NODE_ACTOR,
                            role="service",
                            action="dicom_series",
                            outcome="unrouted" if ref is None else "model_unavailable",
                            client=client,
                        ),
                    )
                    continue
                if depth >= queue_max:
                    break  # the queue is full: the series waits for the next round
                job_id = new_job_id()
                target = data_dir / "uploads" / job_id
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                moved.append((target, source))
                job = Job(
                    id=job_id,
                    user_id=row.owner_id or user.id,
                    model_name=model[0],
                    model_version=model[1],
                    model_sha256=model[2],
                    input_kind="dicom",
                    input_sha256=folder_digest(target),
                    state="queued",
                )
                session.add(job)
                if config.destination:
                    session.add(
                        Delivery(job_id=job_id, series_id=row.id, destination=config.destination)
                    )
                row.state, row.job_id = "queued", job_id
                depth += 1
                append(
                    session,
                    AuditEvent(
                        actor=NODE_ACTOR,
                        role="service",
                        action="predict_submit",
                        outcome="queued",
                        client=client,
                        model_name=model[0],
                        model_version=model[1],
                        model_sha256=model[2],
                        input_sha256=job.input_sha256,
                        target=job_id,
                    ),
                )
                queued.append(job_id)
            session.commit()
        except BaseException:
            session.rollback()
            for target, source in moved:  # put the files back where the series expects them
                if target.exists() and not source.exists():
                    os.replace(target, source)
            raise
    return queued
