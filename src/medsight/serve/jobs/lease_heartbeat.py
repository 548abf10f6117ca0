"""The heartbeat of a running job: a thread that keeps the job's lease fresh while it runs.

A worker cannot ask the database whether it still holds a job while the model runs (torch
holds the thread), so a second thread does: every ``interval_s`` it refreshes
``heartbeat_at`` under the job's lease token (`queue.heartbeat`). When the update matches no
row the lease is lost (a reaper took the job back); the thread stops and `lost` is set, and
the worker's result will be discarded by `queue.finish` whatever it finds.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from medsight.serve.api.errors import ApiError
from medsight.serve.jobs.queue import heartbeat
from medsight.serve.store.database import Database

log = logging.getLogger("medsight.serve")


class LeaseHeartbeat:
    """Use as ``with LeaseHeartbeat(db, job_id, token, 5.0):`` around the work on a job."""

    def __init__(self, db: Database, job_id: str, lease_token: str, interval_s: float) -> None:
        self.db, self.job_id, self.lease_token = db, job_id, lease_token
        self.interval_s = interval_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medsight-heartbeat", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self.db.write() as session:
                    held = heartbeat(session, self.job_id, self.lease_token)
                    session.commit()
            except (SQLAlchemyError, ApiError):
                # the database is unreachable: keep trying; if this lasts past the stall
                # time a reaper takes the job back and the lease check at the end sees it
                log.warning("worker: heartbeat not recorded (database unavailable)")
                continue
            if not held:
                log.warning("worker: lease lost; the job's result will be discarded")
                self.lost.set()
                return
