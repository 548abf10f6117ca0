"""`create_app`: the FastAPI application of `medsight serve`.

On start it opens and migrates the database, loads the de-identification key and starts the
job worker (``workers`` threads, none with ``--workers 0``: jobs left running by a killed
worker are taken back by any worker's reaper once their heartbeat is stale); on stop it lets
the worker finish its current step. Errors of every kind leave as JSON
``{"error": {"code", "message"}}``: `ApiError`, FastAPI's validation errors (their default
body echoes the input, which can be patient data, so only the field location is kept),
unknown routes and methods, and bugs (500 ``internal``, logged by exception type only).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import medsight
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.body_limit import BodyLimit, BodyTooLarge
from medsight.serve.api.errors import ApiError
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.api.request_log import log_request
from medsight.serve.api.routes import auth as routes_auth
from medsight.serve.api.routes import dicomweb as routes_dicomweb
from medsight.serve.api.routes import jobs as routes_jobs
from medsight.serve.api.routes import ops as routes_ops
from medsight.serve.api.routes import predict as routes_predict
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.api.state import ServiceState
from medsight.serve.api.sync_slots import SyncSlots
from medsight.serve.dicom.config import load_node_config
from medsight.serve.dicom.node import DicomNode
from medsight.serve.jobs.model_cache import ModelCache
from medsight.serve.jobs.worker import JobWorker
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database
from medsight.serve.store.deid_key import service_policy
from medsight.serve.viewer import data as viewer_data
from medsight.serve.viewer import routes as routes_viewer

log = logging.getLogger("medsight.serve")
_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse(status_code=error.status, content=error.body(), headers=error.headers)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, _: BodyTooLarge) -> JSONResponse:
        limit = request.app.state.service.settings.max_upload_bytes
        return _error(ApiError("payload_too_large", f"request body over {limit} bytes"))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
        return _error(ApiError("invalid_input", f"invalid request: {where or 'body'}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "bad_request")
        message = {"not_found": "no such route", "method_not_allowed": "method not allowed"}
        return _error(ApiError(code, message.get(code, "bad request")))

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__)
        return _error(ApiError("internal", "internal error; the service log has its type"))


def job_worker(
    settings: ServiceSettings, db: Database, cache: ModelCache, metrics: ServiceMetrics
) -> JobWorker:
    """The job worker ``settings`` ask for (``workers`` threads; 0: none in this process)."""
    return JobWorker(
        db,
        cache,
        metrics,
        settings.data_dir,
        count=settings.workers,
        heartbeat_s=settings.heartbeat_seconds,
        stall_s=settings.stall_seconds,
        max_attempts=settings.max_attempts,
        poll_s=settings.poll_seconds,
    )


def create_app(settings: ServiceSettings, start_worker: bool = True) -> FastAPI:
    """The service app for ``settings`` (database, registry, worker started on startup)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url())
        metrics = ServiceMetrics()
        registry = ModelRegistry(settings.registry)
        cache = ModelCache(registry, metrics)
        worker = job_worker(settings, db, cache, metrics)
        state = ServiceState(
            settings=settings,
            db=db,
            registry=registry,
            rate_limiter=RateLimiter(settings.rate_per_minute),
            metrics=metrics,
            models=cache,
            worker=worker,
            deid_policy=service_policy(settings),
            sync_slots=SyncSlots(settings.sync_max, settings.queue_max),
            login_limiter=RateLimiter(routes_auth.LOGIN_PER_MINUTE),
        )
        app.state.service = state
        node = None
        if settings.dicom_config is not None:
            node = DicomNode(
                load_node_config(settings.dicom_config),
                settings,
                db,
                state.deid_policy,
                cache,
                worker,
                metrics,
            )
            state.dicom_node = node
        if start_worker:
            worker.start()
        if node is not None:
            node.start()
        try:
            yield
        finally:
            if node is not None:
                node.stop()
            worker.stop()
            db.close()

    app = FastAPI(
        title="medsight",
        version=medsight.__version__,
        description="Authenticated inference on medical images (DICOM, NIfTI, PNG).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _install_handlers(app)
    # the last added middleware is the outermost: the request log sees BodyLimit's 413s
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.middleware("http")(log_request)
    for module in (
        routes_ops,
        routes_auth,
        routes_predict,
        routes_jobs,
        routes_dicomweb,
        viewer_data,
        routes_viewer,
    ):
        app.include_router(module.router)
    return app


class SwallowErrors:
    """Outermost ASGI wrapper: a bug's exception stops here, logged by type only.

    Starlette answers the client (500 JSON, above) and then re-raises so servers can log the
    traceback; uvicorn would print it, and a traceback can quote request data.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            log.error("request ended by %s", type(exc).__name__)
