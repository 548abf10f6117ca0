"""`medsight worker`: a process that only runs jobs, for scaling workers apart from the API.

It opens the same database and data folder as `medsight serve` (PostgreSQL and shared
storage when the processes are on several machines), runs `JobWorker` threads with their
reaper and wake-up listener, and stops on SIGTERM or Ctrl-C after its running jobs' current
step (a job cut off then is taken back by a reaper once its heartbeat is stale). It serves
no HTTP and holds no de-identification key: the inputs it reads were de-identified when
they were stored.
"""

from __future__ import annotations

import logging
import signal
import threading

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.app import job_worker
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.model_cache import ModelCache, register_tasks
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database

log = logging.getLogger("medsight.serve")


def run_worker(settings: ServiceSettings, stop: threading.Event | None = None) -> None:
    """Run ``settings.workers`` job threads until SIGTERM, SIGINT or ``stop`` is set."""
    stop = stop or threading.Event()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url())
    metrics = ServiceMetrics()
    cache = ModelCache(ModelRegistry(settings.registry), metrics)
    worker = job_worker(settings, db, cache, metrics)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    register_tasks()  # before claiming: a claimed job should not wait for imports
    worker.start()
    shown = db.engine.url.render_as_string(hide_password=True)
    log.info("medsight worker %s: %d thread(s) on %s", worker.name, settings.workers, shown)
    try:
        while not stop.wait(1.0):
            if not worker.alive():
                log.error("worker: a job thread stopped; exiting")
                break
    finally:
        worker.stop()
        db.close()
        log.info("medsight worker %s stopped", worker.name)
