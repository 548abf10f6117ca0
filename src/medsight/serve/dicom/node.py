"""The DICOM node of `medsight serve`: the Storage SCP plus one thread that closes quiet
series into jobs and delivers finished results (see `dicom_receiver`, `series_assembly`,
`dicom_sender`). It shares the service's database, queue, worker, audit trail and metrics.
"""

from __future__ import annotations

import logging
import threading

from medsight.imaging.io.deid import DeidPolicy
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.dicom.config import NodeConfig
from medsight.serve.dicom.receiver import StorageReceiver
from medsight.serve.dicom.sender import deliver_due
from medsight.serve.dicom.series_assembly import close_quiet_series
from medsight.serve.jobs.model_cache import ModelCache
from medsight.serve.jobs.worker import JobWorker
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import record_key

log = logging.getLogger("medsight.serve")
TICK_S = 0.5


class DicomNode:
    """Receives, routes and answers DICOM; `start` and `stop` with the service."""

    def __init__(
        self,
        config: NodeConfig,
        settings: ServiceSettings,
        db: Database,
        policy: DeidPolicy,
        cache: ModelCache,
        worker: JobWorker,
        metrics: ServiceMetrics,
    ) -> None:
        self.config, self.settings, self.db = config, settings, db
        self.cache, self.worker, self.metrics = cache, worker, metrics
        self.key = record_key(policy.key)
        self.receiver = StorageReceiver(config, settings, db, policy, metrics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medsight-dicom", daemon=True)

    @property
    def port(self) -> int:
        return self.receiver.port

    def tick(self) -> None:
        """One round: close quiet series into jobs, then deliver finished results."""
        queued = close_quiet_series(
            self.db,
            self.config,
            self.cache,
            self.settings.data_dir,
            self.key,
            self.settings.queue_max,
        )
        if queued:
            self.worker.notify()
        deliver_due(self.db, self.config, self.settings.data_dir, self.key, self.metrics)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except ApiError:
                log.error("dicom: audit trail unavailable; retrying")
            except Exception as exc:  # keep the node alive; say what kind of trouble
                log.error("dicom: round failed (%s)", type(exc).__name__)

    def alive(self) -> bool:
        return self._thread.is_alive() and self.receiver.server is not None

    def start(self) -> None:
        self.receiver.start()
        self._thread.start()
        log.info(
            "dicom node %s listening on %s:%d", self.config.ae_title, self.config.host, self.port
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.receiver.stop()
