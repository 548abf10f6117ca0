"""Wake idle workers when a job is queued: PostgreSQL ``LISTEN``, with polling as the fallback.

The database sends a NOTIFY on the ``medsight_jobs`` channel whenever a job becomes queued
(a trigger, `store.database._v4`), from whichever process or machine queued it. One thread
per worker process holds a connection that LISTENs and sets the worker's wake event on each
notification. If that connection fails the thread reconnects after ``retry_s``; meanwhile,
and always on SQLite (which has no notifications), the workers' own poll finds the jobs.
"""

from __future__ import annotations

import logging
import threading

from medsight.serve.store.database import JOBS_CHANNEL, Database

log = logging.getLogger("medsight.serve")


class JobWakeup:
    """A thread that sets ``wake`` whenever PostgreSQL announces a queued job."""

    def __init__(self, db: Database, wake: threading.Event, retry_s: float = 5.0) -> None:
        self.db, self.wake, self.retry_s = db, wake, retry_s
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medsight-listen", daemon=True)

    @staticmethod
    def supported(db: Database) -> bool:
        return db.engine.dialect.name == "postgresql"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    conn.exec_driver_sql(f"LISTEN {JOBS_CHANNEL}")
                    raw = conn.connection.driver_connection
                    assert raw is not None
                    # jobs queued while this connection was down were missed: look now
                    self.wake.set()
                    self.listening.set()
                    while not self._stop.is_set():
                        for _ in raw.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except Exception as exc:  # SQLAlchemy's and psycopg's errors: reconnect
                self.listening.clear()
                log.warning("worker: LISTEN connection lost (%s); polling", type(exc).__name__)
                self._stop.wait(self.retry_s)
