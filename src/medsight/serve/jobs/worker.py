"""The job worker: threads that run queued jobs one at a time each, in `medsight serve` or in
a `medsight worker` process of its own.

A worker thread claims a job under a lease (`claim_next`), runs the model on the job's
de-identified input while `LeaseHeartbeat` keeps the lease fresh, and writes the result into
an attempt folder of its own (``results/.JOB.attempt-LEASE``). It then finishes the job and
its audit record in one transaction; only if its lease still holds is the attempt folder
published by a rename to ``results/JOB`` inside that transaction. A worker that lost its
lease discards its folder, so a job has one result folder however many attempts ran.
Leftover attempt folders of earlier attempts (their workers were killed) are removed when
the job ends.

A reaper thread per worker process takes back jobs whose worker stopped heartbeating
(`reap_stalled`), and on PostgreSQL a `JobWakeup` thread wakes idle workers as soon as a job
is queued; otherwise they poll every ``poll_s``.

Errors a user can act on (`InputError`: the input does not suit the model) fail the job with
``invalid_input``; anything else fails it with ``internal`` and is logged by type only,
since exception text can quote the data.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from medsight.errors import InputError
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.inference import run_prediction
from medsight.serve.jobs.job_wakeup import JobWakeup
from medsight.serve.jobs.lease_heartbeat import LeaseHeartbeat
from medsight.serve.jobs.model_cache import ModelCache
from medsight.serve.jobs.queue import active_jobs, any_queued, claim_next, finish, reap_stalled
from medsight.serve.store.database import Database
from medsight.serve.store.deidentified_input import stored_path
from medsight.serve.store.schema import Job, User

log = logging.getLogger("medsight.serve")


def input_path(data_dir: Path, job_id: str, kind: str) -> Path:
    """Where the de-identified input of a job is stored."""
    return stored_path(Path(data_dir) / "uploads" / job_id, kind)


def result_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir) / "results" / job_id


def attempt_dir(data_dir: Path, job_id: str, lease_token: str) -> Path:
    """Where one attempt at a job writes its result before it is published."""
    return Path(data_dir) / "results" / f".{job_id}.attempt-{lease_token}"


def discard_attempts(data_dir: Path, job_id: str) -> None:
    """Remove every unpublished attempt folder of a job (and their temporary folders)."""
    for stale in (Path(data_dir) / "results").glob(f"*.{job_id}.*"):
        shutil.rmtree(stale, ignore_errors=True)


def publish_attempt(attempt: Path, final: Path) -> None:
    """Rename ``attempt`` to ``final``, replacing a folder an uncommitted attempt published.

    Idempotent: when ``attempt`` is gone it was published by an earlier try of this call.
    """
    if not attempt.exists():
        return
    if final.exists():
        shutil.rmtree(final)
    os.replace(attempt, final)


def clean_message(message: str, data_dir: Path) -> str:
    """``message`` without server paths (they hold job ids, but say nothing useful)."""
    return message.replace(str(Path(data_dir).resolve()), "").replace(str(data_dir), "")


def worker_name() -> str:
    """This process's worker id prefix: ``HOST:PID`` (threads add ``:N``)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def execute(
    db: Database,
    cache: ModelCache,
    metrics: ServiceMetrics,
    data_dir: Path,
    job: Job,
    heartbeat_s: float = 5.0,
    heatmap: bool = True,
) -> bool:
    """Run one claimed job to its end; returns whether this call finished it.

    False means the lease was lost (another worker owns the job now, or it ended): the
    result of this attempt is discarded and nothing in the database changes.
    """
    assert job.lease_token is not None, "execute runs claimed jobs only"
    lease = job.lease_token
    with db.session() as session:
        owner = session.get(User, job.user_id)
        actor, role = (owner.name, owner.role) if owner else ("unknown", "")
    attempt = attempt_dir(data_dir, job.id, lease)
    final = result_dir(data_dir, job.id)
    result, error = None, None
    with LeaseHeartbeat(db, job.id, lease, heartbeat_s):
        try:
            model = cache.get(job.model_name, job.model_version)
            result = run_prediction(
                model,
                input_path(data_dir, job.id, job.input_kind),
                attempt,
                metrics,
                heatmap=heatmap,
            )
        except ApiError as exc:
            error = (exc.code, exc.message)
        except InputError as exc:
            error = ("invalid_input", clean_message(str(exc), data_dir))
        except Exception as exc:  # a bug: fail the job, keep the worker alive
            log.error("job failed with %s", type(exc).__name__)
            error = ("internal", "the prediction failed; the service log has the error type")

        def publish() -> None:
            if result is not None:
                publish_attempt(attempt, final)

        done = False
        for try_number in range(5):
            try:
                with db.write() as session:
                    done = finish(session, job.id, actor, role, result, error, lease, publish)
                    session.commit()
                break
            except (SQLAlchemyError, ApiError):  # database or audit trail unavailable: retry
                time.sleep(0.5 * (try_number + 1))
        else:
            # the lease will go stale and another attempt will run the job
            log.error("job could not be finished: database unavailable")
    if done:
        metrics.jobs.labels("failed" if error else "done").inc()
        discard_attempts(data_dir, job.id)
    else:
        shutil.rmtree(attempt, ignore_errors=True)
        log.warning("worker: lease lost before the job was finished; its result is discarded")
    return done


class JobWorker:
    """``count`` threads running queued jobs until `stop`, plus (when ``count`` > 0) the reaper
    and, on PostgreSQL, the LISTEN thread."""

    def __init__(
        self,
        db: Database,
        cache: ModelCache,
        metrics: ServiceMetrics,
        data_dir: Path,
        count: int = 1,
        heartbeat_s: float = 5.0,
        stall_s: float = 30.0,
        max_attempts: int = 3,
        poll_s: float = 1.0,
    ) -> None:
        self.db, self.cache, self.metrics, self.data_dir = db, cache, metrics, data_dir
        self.count = count
        self.heartbeat_s, self.stall_s = heartbeat_s, stall_s
        self.max_attempts, self.poll_s = max_attempts, poll_s
        self.name = worker_name()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(f"{self.name}:{i}",),
                name=f"medsight-worker-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        if count:
            self._threads.append(
                threading.Thread(target=self._reap, name="medsight-reaper", daemon=True)
            )
        self.wakeup = JobWakeup(db, self._wake) if count and JobWakeup.supported(db) else None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        if self.wakeup is not None:
            self.wakeup.start()

    def notify(self) -> None:
        """A job was queued in this process: wake an idle worker."""
        self._wake.set()

    def alive(self) -> bool:
        """True while every worker thread runs (False after `stop`; True with no threads)."""
        return not self._stop.is_set() and all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)
        if self.wakeup is not None:
            self.wakeup.stop()

    def _update_depth(self) -> None:
        with self.db.session() as session:
            self.metrics.queue_depth.set(active_jobs(session))

    def reap_once(self) -> int:
        """One reaper round; returns how many jobs it queued again."""
        with self.db.write() as session:
            reaped = reap_stalled(session, self.stall_s, self.max_attempts)
            session.commit()
        for job_id in reaped.failed:
            discard_attempts(self.data_dir, job_id)
            self.metrics.jobs.labels("failed").inc()
            log.error("gave up a job whose worker stopped %d times", self.max_attempts)
        if reaped.requeued:
            log.warning(
                "re-queued %d job(s) whose worker stopped (no heartbeat for %g s)",
                len(reaped.requeued),
                self.stall_s,
            )
            self._wake.set()
        return len(reaped.requeued)

    def _reap(self) -> None:
        # a few rounds per stall time, so a stalled job waits little past it
        period = max(0.2, self.stall_s / 4)
        while True:
            try:
                self.reap_once()
            except (SQLAlchemyError, ApiError):
                log.error("worker: reaper could not reach the database; retrying")
            if self._stop.wait(period):
                return

    def _run(self, worker_id: str) -> None:
        while not self._stop.is_set():
            try:
                job = None
                with self.db.session() as session:
                    waiting = any_queued(session)
                if waiting:
                    with self.db.write() as session:
                        job = claim_next(session, worker_id)
                        session.commit()
                    self._update_depth()
            except (SQLAlchemyError, ApiError):
                log.error("worker: database unavailable; retrying")
                self._stop.wait(1.0)
                continue
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            execute(self.db, self.cache, self.metrics, self.data_dir, job, self.heartbeat_s)
            self._update_depth()
