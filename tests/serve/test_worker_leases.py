"""Leases on jobs, on each backend: claim, heartbeat, finish only under the lease, the reaper.

These drive the queue functions against a real database (SQLite and PostgreSQL) with jobs
queued as the API queues them; `test_worker_chaos` and `test_worker_zombie` run the same
logic in real ``medsight worker`` processes.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from service_kit import ct_series_bytes, make_users, register_models, service_settings
from sqlalchemy import inspect, select, text, update
from worker_kit import queue_jobs

from medsight.serve.jobs.job_wakeup import JobWakeup
from medsight.serve.jobs.queue import claim_next, finish, heartbeat, reap_stalled
from medsight.serve.jobs.worker import attempt_dir, publish_attempt, result_dir
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import SCHEMA_VERSION, Database
from medsight.serve.store.schema import AuditRecord, Job, SchemaVersion


@pytest.fixture
def queued(tmp_path: Path, database_url: str):
    """A database with users, models and two queued ``cls3d`` jobs."""
    settings = service_settings(tmp_path, database_url)
    registry = register_models(settings.registry, tmp_path / "runs")
    db = Database(database_url)
    make_users(db)
    ids = queue_jobs(db, settings, registry, "cls3d", ct_series_bytes(tmp_path), 2)
    yield db, settings, ids
    db.close()


def audit(db: Database, job_id: str) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.outcome)
            .where(AuditRecord.target == job_id)
            .order_by(AuditRecord.seq)
        ).all()
    return [(a, o) for a, o in rows]


def job(db: Database, job_id: str) -> Job:
    with db.session() as session:
        found = session.get(Job, job_id)
    assert found is not None
    return found


def age_heartbeat(db: Database, job_id: str, seconds: float) -> None:
    """Make the job's heartbeat look ``seconds`` old (its worker stopped that long ago)."""
    with db.write() as session:
        found = session.get(Job, job_id)
        assert found is not None and found.heartbeat_at is not None
        found.heartbeat_at -= dt.timedelta(seconds=seconds)
        session.commit()


def claim(db: Database, worker_id: str) -> Job:
    with db.write() as session:
        claimed = claim_next(session, worker_id)
        session.commit()
    assert claimed is not None
    return claimed


def test_claim_stamps_a_lease_and_audits_the_attempt(queued) -> None:
    db, _, ids = queued
    first = claim(db, "host-a:1:0")
    assert first.id == ids[0]  # oldest first
    assert (first.state, first.attempts, first.worker_id) == ("running", 1, "host-a:1:0")
    assert first.lease_token and first.heartbeat_at is not None
    second = claim(db, "host-b:2:0")
    assert second.id == ids[1] and second.lease_token != first.lease_token
    with db.write() as session:
        assert claim_next(session, "host-c:3:0") is None  # nothing left
    assert audit(db, first.id) == [("predict_submit", "queued"), ("job_attempt", "claimed:1")]


def test_only_the_lease_holder_finishes(queued, tmp_path: Path) -> None:
    db, settings, ids = queued
    held = claim(db, "w:1:0")
    assert held.lease_token is not None
    published = []
    with db.write() as session:
        assert not finish(
            session,
            held.id,
            "service",
            "service",
            {"x": 1},
            None,
            "not-the-lease",
            lambda: published.append("stale"),
        )
        # a job run by a worker is never finished by a caller without a lease
        assert not finish(session, held.id, "service", "service", {"x": 1})
        session.commit()
    assert published == [] and job(db, held.id).state == "running"

    attempt = attempt_dir(settings.data_dir, held.id, held.lease_token)
    attempt.mkdir(parents=True)
    (attempt / "probabilities.json").write_text("{}")
    final = result_dir(settings.data_dir, held.id)
    with db.write() as session:
        assert finish(
            session,
            held.id,
            "service",
            "service",
            {"x": 1},
            None,
            held.lease_token,
            lambda: publish_attempt(attempt, final),
        )
        session.commit()
    assert (final / "probabilities.json").is_file() and not attempt.exists()
    with db.write() as session:  # completion is exactly once
        assert not finish(session, held.id, "service", "service", {"x": 2}, None, held.lease_token)
        session.commit()
    done = job(db, held.id)
    assert (done.state, done.result) == ("done", {"x": 1})
    assert audit(db, held.id)[-1] == ("predict_result", "done")


def test_reaper_requeues_a_stalled_job_and_its_worker_loses_the_lease(queued) -> None:
    db, _, ids = queued
    stalled, alive = claim(db, "w:1:0"), claim(db, "w:2:0")
    assert stalled.lease_token is not None and alive.lease_token is not None
    age_heartbeat(db, stalled.id, 60)
    with db.write() as session:
        reaped = reap_stalled(session, stall_s=30, max_attempts=3)
        session.commit()
    assert (reaped.requeued, reaped.failed) == ([stalled.id], [])
    back = job(db, stalled.id)
    assert (back.state, back.lease_token, back.worker_id, back.attempts) == (
        "queued",
        None,
        None,
        1,
    )
    assert job(db, alive.id).state == "running"  # a fresh heartbeat is left alone
    with db.write() as session:
        assert not heartbeat(session, stalled.id, stalled.lease_token)
        assert heartbeat(session, alive.id, alive.lease_token)
        session.commit()
    again = claim(db, "w:3:0")
    assert again.id == stalled.id and again.attempts == 2
    assert audit(db, stalled.id) == [
        ("predict_submit", "queued"),
        ("job_attempt", "claimed:1"),
        ("job_requeue", "stalled:1"),
        ("job_attempt", "claimed:2"),
    ]
    with db.session() as session:
        assert verify_chain(session).ok


def test_reaper_fails_a_job_out_of_attempts_with_the_reason(queued) -> None:
    db, _, ids = queued
    for attempt in range(1, 3):
        claimed = claim(db, f"w:{attempt}:0")
        assert claimed.id == ids[0] and claimed.attempts == attempt
        age_heartbeat(db, claimed.id, 60)
        with db.write() as session:
            reaped = reap_stalled(session, stall_s=30, max_attempts=2)
            session.commit()
    assert reaped.failed == [ids[0]]
    failed = job(db, ids[0])
    assert (failed.state, failed.error_code) == ("failed", "stalled")
    assert "stopped 2 times" in (failed.error_message or "")
    assert audit(db, ids[0])[-1] == ("predict_result", "failed:stalled")


def test_a_request_running_its_own_job_is_not_reaped(queued) -> None:
    """A synchronous (2D) job has no lease; it is not taken back at the stall time."""
    db, _, ids = queued
    with db.write() as session:
        found = session.get(Job, ids[0])
        assert found is not None
        found.state, found.attempts = "running", 1
        found.started = found.created - dt.timedelta(seconds=60)
        session.commit()
        reaped = reap_stalled(session, stall_s=30, max_attempts=3)
        session.commit()
    assert reaped.requeued == [] and job(db, ids[0]).state == "running"
    with db.write() as session:
        assert finish(session, ids[0], "service", "service", {"x": 1})
        session.commit()


def test_a_version_3_database_gains_the_lease_columns(database_url: str) -> None:
    db = Database(database_url)
    with db.write() as session:
        for table, column in [
            ("jobs", "lease_token"),
            ("jobs", "worker_id"),
            ("jobs", "heartbeat_at"),
            ("deliveries", "lease_token"),
        ]:
            session.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        session.execute(update(SchemaVersion).values(version=3))
        session.commit()
    db.close()
    db = Database(database_url)
    with db.session() as session:
        columns = {c["name"] for c in inspect(session.connection()).get_columns("jobs")}
        version = session.execute(select(SchemaVersion.version)).scalar_one()
    db.close()
    assert {"lease_token", "worker_id", "heartbeat_at"} <= columns
    assert version == SCHEMA_VERSION


@pytest.mark.external
def test_concurrent_claims_take_different_jobs(postgres_database_url: str, tmp_path: Path) -> None:
    """A second worker claiming while the first holds its job's row lock skips that row.

    Both claims append to the audit chain, so the second waits for the first's commit at the
    audit head; without SKIP LOCKED it would also have waited on the first job's row and
    then found it taken, claiming nothing.
    """
    settings = service_settings(tmp_path, postgres_database_url)
    registry = register_models(settings.registry, tmp_path / "runs")
    db = Database(postgres_database_url)
    try:
        make_users(db)
        ids = queue_jobs(db, settings, registry, "cls3d", ct_series_bytes(tmp_path), 2)
        other: list[Job | None] = []

        def second_worker() -> None:
            with db.write() as session:
                other.append(claim_next(session, "w:2:0"))
                session.commit()

        with db.write() as first:
            held = claim_next(first, "w:1:0")  # its row stays locked until commit
            assert held is not None
            thread = threading.Thread(target=second_worker)
            thread.start()
            thread.join(1.0)  # let it reach the locks
            first.commit()
        thread.join(60)
        assert other and other[0] is not None
        assert {held.id, other[0].id} == set(ids)
    finally:
        db.close()


@pytest.mark.external
def test_notify_wakes_an_idle_worker(postgres_database_url: str, tmp_path: Path) -> None:
    settings = service_settings(tmp_path, postgres_database_url)
    registry = register_models(settings.registry, tmp_path / "runs")
    db = Database(postgres_database_url)
    wake = threading.Event()
    listener = JobWakeup(db, wake)
    try:
        make_users(db)
        listener.start()
        assert listener.listening.wait(30), "the LISTEN connection did not open"
        wake.clear()
        queue_jobs(db, settings, registry, "cls3d", ct_series_bytes(tmp_path), 1)
        assert wake.wait(30), "no NOTIFY arrived for the queued job"
    finally:
        listener.stop()
        db.close()
