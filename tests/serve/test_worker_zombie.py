"""A zombie worker: frozen past its lease, it comes back after another worker finished its job.

Worker A claims a 3D segmentation job (seconds of work) and is frozen with SIGSTOP while the
job runs. Its heartbeat stops; worker B's reaper takes the job back after the stall time
(3 s here) and B runs it to the end. Then A gets SIGCONT and finishes its own run of the job:
its completion must touch nothing (job row, result folder, audit trail), its result is
discarded, and it says so in its log.

PostgreSQL only: on SQLite a process frozen inside its heartbeat's write transaction would
hold the whole database's write lock, which is why SQLite is a single-node, single-writer
setup; the chaos test covers SQLite with kills.
"""

from __future__ import annotations

import hashlib
import signal
import socket
import time
from pathlib import Path

import pytest
from service_kit import make_users, register_models, service_settings
from sqlalchemy import select
from worker_kit import WorkerProcess, audit_of, big_series, queue_jobs, read_jobs, wait_until

from medsight.serve.jobs.worker import result_dir
from medsight.serve.store.database import Database
from medsight.serve.store.schema import Job

pytestmark = [pytest.mark.slow, pytest.mark.external]


def folder_state(folder: Path) -> dict[str, tuple[str, float]]:
    """Every file under ``folder``: its SHA-256 and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def row_locked(db: Database, job_id: str) -> bool:
    """Whether another transaction holds the job's row lock (a heartbeat in flight)."""
    with db.write() as session:
        free = session.execute(
            select(Job.id).where(Job.id == job_id).with_for_update(skip_locked=True)
        ).first()
        session.rollback()
    return free is None


def freeze_mid_job(worker: WorkerProcess, db: Database, job_id: str) -> None:
    """SIGSTOP ``worker`` at a moment it holds no row lock on the job (between heartbeats)."""
    for _ in range(50):
        worker.signal(signal.SIGSTOP)
        time.sleep(0.2)
        if not row_locked(db, job_id):
            return
        worker.signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the worker always held the job's row lock")


def test_a_frozen_worker_that_lost_its_lease_changes_nothing(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, postgres_database_url)
    registry = register_models(settings.registry, tmp_path / "runs")
    db = Database(postgres_database_url)
    a = b = None
    try:
        make_users(db)
        (job_id,) = queue_jobs(db, settings, registry, "seg3d", big_series(tmp_path / "big"), 1)
        a = WorkerProcess.start(tmp_path / "a", settings)
        prefix = f"{socket.gethostname()[:40]}:{a.pid}:"

        def a_runs_it() -> bool:
            job = read_jobs(db)[job_id]
            assert job.state != "done", "the job ended before A could be frozen; enlarge it"
            return job.state == "running" and (job.worker_id or "").startswith(prefix)

        wait_until(a_runs_it, 180, "worker A claiming the job", interval_s=0.02)
        freeze_mid_job(a, db, job_id)

        b = WorkerProcess.start(tmp_path / "b", settings)
        wait_until(lambda: read_jobs(db)[job_id].state == "done", 300, "worker B finishing")
        job = read_jobs(db)[job_id]
        assert job.attempts == 2 and not (job.worker_id or "").startswith(prefix)
        before = (job.state, job.result, job.finished, job.lease_token, job.attempts)
        trail = audit_of(db, job_id)
        folder = result_dir(settings.data_dir, job_id)
        files = folder_state(folder)
        assert files, "B's result folder is empty"

        a.signal(signal.SIGCONT)
        wait_until(
            lambda: "lease lost before the job was finished" in a.stderr(),
            300,
            "worker A discarding its result",
            interval_s=0.2,
        )
        job = read_jobs(db)[job_id]
        assert (job.state, job.result, job.finished, job.lease_token, job.attempts) == before
        assert audit_of(db, job_id) == trail
        assert [a for a, _ in trail].count("predict_result") == 1
        assert trail[:4] == [
            ("predict_submit", "queued"),
            ("job_attempt", "claimed:1"),
            ("job_requeue", "stalled:1"),
            ("job_attempt", "claimed:2"),
        ]
        assert folder_state(folder) == files
        left = {p.name for p in (settings.data_dir / "results").iterdir()}
        assert left == {job_id}  # A's attempt folder was discarded
    finally:
        for worker in (a, b):
            if worker is not None:
                worker.stop()
        db.close()
