"""Operations routes: liveness (the only unauthenticated route), readiness, metrics, models, docs.

``/healthz`` says only that the process answers. Everything else needs a token:
``/readyz`` (database reachable, registry readable, worker alive), ``/metrics``
(Prometheus text; admin and service accounts, for the scraper), ``/v1/models`` (what can be
asked for), and the OpenAPI schema and docs page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import text

from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import CONTENT_TYPE
from medsight.serve.api.state import service_state
from medsight.serve.auth.dependencies import Principal, require

router = APIRouter()
AnyRole = Annotated[Principal, Depends(require("admin", "clinician", "service"))]
Scraper = Annotated[Principal, Depends(require("admin", "service"))]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers (no authentication, no detail)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, principal: AnyRole) -> dict[str, Any]:
    """Readiness: database, registry and worker checked."""
    state = service_state(request)
    checks: dict[str, bool] = {}
    try:
        with state.db.session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    try:
        state.registry.list()
        checks["registry"] = True
    except Exception:
        checks["registry"] = False
    checks["worker"] = state.worker.alive()
    if state.dicom_node is not None:
        checks["dicom_node"] = state.dicom_node.alive()
    if not all(checks.values()):
        failed = ", ".join(k for k, ok in checks.items() if not ok)
        raise ApiError("not_ready", f"not ready: {failed}")
    return {"status": "ready", "checks": checks}


@router.get("/metrics")
def metrics(request: Request, principal: Scraper) -> Response:
    """Prometheus metrics: requests, latencies, queue depth, model load and inference times."""
    return Response(service_state(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/v1/models")
def models(request: Request, principal: AnyRole) -> dict[str, Any]:
    """Served models: name, versions (not retired), task, classes, SHA-256."""
    listing = service_state(request).registry.list()
    return {
        "models": [
            {
                "name": name,
                "version": version,
                "task": entry.get("task"),
                "classes": entry.get("classes"),
                "sha256": entry.get("sha256"),
            }
            for name, versions in sorted(listing.items())
            for version, entry in versions.items()
            if not entry.get("retired")
        ]
    }


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, principal: AnyRole) -> dict[str, Any]:
    """The OpenAPI schema."""
    return request.app.openapi()


@router.get("/docs", include_in_schema=False)
def docs(request: Request, principal: AnyRole) -> HTMLResponse:
    """Swagger UI for the schema (the browser fetches its script from the jsDelivr CDN)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="medsight API")
