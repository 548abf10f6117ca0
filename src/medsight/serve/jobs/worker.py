"""The job worker: threads of the service process that run queued jobs one at a time each.

A worker claims a job (`claim_next`), runs the model on the job's de-identified input,
writes the result folder whole, then finishes the job and its audit record in one
transaction. Errors a user can act on (`InputError`: the input does not suit the model)
fail the job with ``invalid_input``; anything else fails it with ``internal`` and is logged
by type only, since exception text can quote the data.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from medsight.errors import InputError
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.inference import run_prediction
from medsight.serve.jobs.model_cache import ModelCache
from medsight.serve.jobs.queue import active_jobs, any_queued, claim_next, finish
from medsight.serve.store.database import Database
from medsight.serve.store.deidentified_input import stored_path
from medsight.serve.store.schema import Job, User

log = logging.getLogger("medsight.serve")


def input_path(data_dir: Path, job_id: str, kind: str) -> Path:
    """Where the de-identified input of a job is stored."""
    return stored_path(Path(data_dir) / "uploads" / job_id, kind)


def result_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir) / "results" / job_id


def clean_message(message: str, data_dir: Path) -> str:
    """``message`` without server paths (they hold job ids, but say nothing useful)."""
    return message.replace(str(Path(data_dir).resolve()), "").replace(str(data_dir), "")


def execute(
    db: Database,
    cache: ModelCache,
    metrics: ServiceMetrics,
    data_dir: Path,
    job: Job,
    heatmap: bool = True,
) -> bool:
    """Run one claimed job to its end; returns whether this call finished it."""
    with db.session() as session:
        owner = session.get(User, job.user_id)
        actor, role = (owner.name, owner.role) if owner else ("unknown", "")
    result, error = None, None
    # a killed attempt leaves its half-written result folder behind: clear it first
    for stale in (Path(data_dir) / "results").glob(f".{job.id}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        model = cache.get(job.model_name, job.model_version)
        result = run_prediction(
            model,
            input_path(data_dir, job.id, job.input_kind),
            result_dir(data_dir, job.id),
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
    metrics.jobs.labels("failed" if error else "done").inc()
    for attempt in range(5):
        try:
            with db.write() as session:
                done = finish(session, job.id, actor, role, result, error)
                session.commit()
                return done
        except (SQLAlchemyError, ApiError):  # database or audit trail unavailable: retry
            time.sleep(0.5 * (attempt + 1))
    log.error("job could not be finished: database unavailable")
    return False


class JobWorker:
    """``count`` threads running queued jobs until `stop`."""

    def __init__(
        self,
        db: Database,
        cache: ModelCache,
        metrics: ServiceMetrics,
        data_dir: Path,
        count: int = 1,
    ) -> None:
        self.db, self.cache, self.metrics, self.data_dir = db, cache, metrics, data_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"medsight-worker-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def notify(self) -> None:
        """A job was queued: wake an idle worker."""
        self._wake.set()

    def alive(self) -> bool:
        """True while every worker thread runs (False before `start` and after `stop`)."""
        return all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _update_depth(self) -> None:
        with self.db.session() as session:
            self.metrics.queue_depth.set(active_jobs(session))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = None
                with self.db.session() as session:
                    waiting = any_queued(session)
                if waiting:
                    with self.db.write() as session:
                        job = claim_next(session)
                        session.commit()
                    self._update_depth()
            except SQLAlchemyError:
                log.error("worker: database unavailable; retrying")
                self._stop.wait(1.0)
                continue
            if job is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            execute(self.db, self.cache, self.metrics, self.data_dir, job)
            self._update_depth()
