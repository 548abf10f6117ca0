"""The browser viewer's pages and assets, and the headers that lock every viewer response down.

The pages (``serve/viewer/*.html``) are shells that carry no data: their scripts fetch
everything from the JSON API (`viewer_data`, ``/v1/...``) with the login cookie and build
the page with ``textContent`` and ``createElement`` only, so a patient name such as
``<img src=x onerror=...>`` arriving over DICOM is shown as text. Plain HTML, CSS and ES
modules with no build step and no third-party code: a viewer of a few hundred lines does not
justify a bundler, and nothing outside the service is ever loaded.

Every response of a route built with `ViewerRoute` (these pages, the assets and the viewer's
data routes), errors included, carries `SECURITY_HEADERS`: a Content-Security-Policy of
``default-src 'self'`` (no inline script or style, no other origin, so an injected tag could
not run even if one got in), ``frame-ancestors 'none'`` against clickjacking, ``nosniff``,
``Referrer-Policy: no-referrer`` (viewer URLs hold job ids) and ``Cache-Control: no-store``
(assets: ``no-cache``, revalidated on each load).

Access: the login page and the assets are public (they hold no data). The other pages need a
login like the data they show. A browser navigating to one without a valid session (its
request accepts ``text/html``) is sent to the login page with ``303 See Other``, and a
browser whose role may not see the page gets a 403 page; a client that asks for JSON gets
the API's own 401/403 JSON errors, so scripts see one behaviour on every route.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from medsight.serve.api.errors import ApiError
from medsight.serve.auth.dependencies import Principal, authenticate, require

CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: the viewer's assets, served by these names only (nothing else in the folder is reachable)
STATIC = {
    "common.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "worklist.js": "text/javascript; charset=utf-8",
    "study.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}
HTML = "text/html; charset=utf-8"
LOGIN_PAGE = "/viewer/login"


class ViewerRoute(APIRoute):
    """A route whose every response, errors included, carries `SECURITY_HEADERS`.

    An `ApiError` raised while serving (by an auth dependency or the handler) is answered
    here, with the same JSON body the app's handler gives, so that it gets the headers too.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = JSONResponse(exc.body(), exc.status, headers=exc.headers)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return secured


router = APIRouter(route_class=ViewerRoute)


def _asset(name: str) -> bytes:
    return resources.files("medsight.serve.viewer").joinpath("static", name).read_bytes()


def _page(name: str, status: int = 200) -> Response:
    return Response(_asset(name), status_code=status, media_type=HTML)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


def page_access(*roles: str) -> Callable[[Request], Principal | Response]:
    """A dependency for a page: the principal, or the response a browser should get instead.

    A browser (accepts ``text/html``) that is not logged in gets a 303 to the login page
    (which returns it here after the login); one whose role is not in ``roles`` gets the
    403 page. Other clients get the `ApiError`, as on every API route.

    Raises:
        ValueError: (at import time) no role, or one not in `ROLES`.
    """
    check = require(*roles)

    def dependency(request: Request) -> Principal | Response:
        try:
            return check(request, authenticate(request))
        except ApiError as exc:
            if not _wants_html(request):
                raise
            if exc.code == "unauthenticated":
                target = f"{LOGIN_PAGE}?next={quote(request.url.path, safe='')}"
                return RedirectResponse(target, status_code=303)
            if exc.code == "forbidden":
                return _page("forbidden.html", 403)
            raise

    return dependency


Reader = Annotated[Principal | Response, Depends(page_access("admin", "clinician", "service"))]
Admin = Annotated[Principal | Response, Depends(page_access("admin"))]


@router.get("/viewer/login")
def login_page() -> Response:
    """The login form (public: it holds no data)."""
    return _page("login.html")


@router.get("/viewer/static/{name}")
def static_asset(name: str) -> Response:
    """One of the viewer's scripts or its style sheet (public), by its name in `STATIC`.

    Raises:
        ApiError: ``not_found`` for any other name (no path is ever built from it).
    """
    media = STATIC.get(name)
    if media is None:
        raise ApiError("not_found", "no such viewer asset")
    return Response(_asset(name), media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/viewer")
def worklist_page(access: Reader) -> Response:
    """The worklist: studies and jobs the user may read, refreshed every few seconds."""
    return access if isinstance(access, Response) else _page("index.html")


@router.get("/viewer/study/{job_id}")
def study_page(job_id: str, access: Reader) -> Response:
    """One study: slice viewer, overlays, result panel, model card (the script reads the id)."""
    return access if isinstance(access, Response) else _page("study.html")


@router.get("/viewer/admin")
def admin_page(access: Admin) -> Response:
    """The admin page: the user list (admins only; others get the 403 page)."""
    return access if isinstance(access, Response) else _page("admin.html")
