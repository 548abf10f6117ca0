"""`ServiceState`: what every request handler of one service process shares.

Kept on ``app.state.service``; dependencies reach it through the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database

if TYPE_CHECKING:
    from medsight.imaging.io.deid.policy import DeidPolicy
    from medsight.serve.api.service_metrics import ServiceMetrics
    from medsight.serve.api.sync_slots import SyncSlots
    from medsight.serve.dicom.node import DicomNode
    from medsight.serve.jobs.model_cache import ModelCache
    from medsight.serve.jobs.worker import JobWorker


@dataclass
class ServiceState:
    settings: ServiceSettings
    db: Database
    registry: ModelRegistry
    rate_limiter: RateLimiter
    metrics: ServiceMetrics
    models: ModelCache
    worker: JobWorker
    #: how uploads are de-identified (the keyed Basic Profile of the service's key)
    deid_policy: DeidPolicy
    #: synchronous 2D predictions in flight, with a bounded waiting line
    sync_slots: SyncSlots
    #: failed logins per client address (stricter than `rate_limiter`)
    login_limiter: RateLimiter
    #: the DICOM node, when the service was started with a node configuration
    dicom_node: DicomNode | None = None


def service_state(request: Request) -> ServiceState:
    """The `ServiceState` of the app serving ``request``."""
    return request.app.state.service


def client_address(request: Request) -> str:
    """The peer's IP address (no proxy headers are trusted)."""
    return request.client.host if request.client else ""
