"""`ServiceState`: what every request handler of one service process shares.

Kept on ``app.state.service``; dependencies reach it through the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database

if TYPE_CHECKING:
    from medsight.serve.api.service_metrics import ServiceMetrics


@dataclass
class ServiceState:
    settings: ServiceSettings
    db: Database
    registry: ModelRegistry
    rate_limiter: RateLimiter
    metrics: ServiceMetrics
    extras: dict[str, Any] = field(default_factory=dict)


def service_state(request: Request) -> ServiceState:
    """The `ServiceState` of the app serving ``request``."""
    return request.app.state.service


def client_address(request: Request) -> str:
    """The peer's IP address (no proxy headers are trusted)."""
    return request.client.host if request.client else ""
