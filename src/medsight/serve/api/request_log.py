"""One log line and the metrics for every request, with nothing from the request's content.

A line holds the method, the route *template* (``/v1/jobs/{job_id}``, never the concrete
path or query string, which a client could fill with anything), the status, the time and
the user id (a number). Uvicorn's own access log is turned off for the same reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from medsight.serve.api.state import service_state
from medsight.serve.auth.dependencies import route_template

log = logging.getLogger("medsight.serve")


async def log_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: time the request, count it, log one line."""
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        seconds = time.perf_counter() - start
        route = route_template(request)
        metrics = service_state(request).metrics
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(seconds)
        principal = getattr(request.state, "principal", None)
        user = getattr(principal, "user_id", "-")
        log.info("%s %s %d %.0fms user=%s", request.method, route, status, seconds * 1000, user)
