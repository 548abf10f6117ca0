"""Who is calling: the FastAPI dependencies that authenticate a request and check its role.

A route states who may call it in its signature (the FastAPI template's pattern)::

    @router.get("/v1/models")
    def models(principal: AnyUser) -> ...

Credentials are an API token (``Authorization: Bearer ms_...``) or, for the viewer, the
``medsight_session`` cookie set by `POST /v1/login`; a request with an Authorization header
is judged by that header alone. Cookie requests that may change something (any method but
GET, HEAD, OPTIONS) must also send the session's CSRF token in ``X-CSRF-Token``: a cookie is
sent by the browser on its own, a header only by the viewer's own script.

Every refusal is audited before it is answered (``auth_failed``, ``forbidden``,
``csrf_failed``); if the audit record cannot be committed the request is answered 503
``audit_unavailable`` instead, never served unrecorded. After authentication each user's
requests go through the per-user rate limit. The principal is also left on
``request.state.principal`` for request logging and metrics.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal, NoReturn

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from medsight.serve.api.errors import ApiError
from medsight.serve.api.state import client_address, service_state
from medsight.serve.auth.login_sessions import find_session
from medsight.serve.auth.users import authenticate_token
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.schema import ROLES

SESSION_COOKIE = "medsight_session"
CSRF_COOKIE = "medsight_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS = "anonymous"
CHALLENGE = {"WWW-Authenticate": "Bearer"}

#: what the client is told for each refusal; ``unknown`` and ``wrong`` read the same, so a
#: caller cannot learn which token ids exist
_MESSAGES = {
    "missing": "authentication required: send 'Authorization: Bearer TOKEN' or log in",
    "malformed": "malformed credentials: send 'Authorization: Bearer ms_...'",
    "unknown": "invalid token",
    "wrong": "invalid token",
    "revoked": "token revoked; ask an admin for a new one",
    "expired": "token expired; ask an admin for a new one",
    "disabled": "account disabled",
    "session_invalid": "login session expired or ended; log in again",
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request.

    Attributes:
        user_id: the user's row id.
        name: the user's name, as written to audit records.
        role: one of `ROLES`.
        via: ``token`` (API token) or ``session`` (viewer login cookie).
    """

    user_id: int
    name: str
    role: str
    via: Literal["token", "session"]


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/jobs/{job_id}``), else the request path.

    Audit records name the template, so they hold no ids or text a caller put in the URL.
    """
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path if isinstance(path, str) else request.url.path)[:128]


@contextlib.contextmanager
def audited_write(request: Request) -> Iterator[Session]:
    """A write session that commits on leaving; a failed commit answers 503.

    Raises:
        ApiError: ``audit_unavailable`` when the database refuses the transaction, so that
            nothing is done or answered without its audit record.
    """
    try:
        with service_state(request).db.write() as session:
            yield session
            session.commit()
    except SQLAlchemyError as exc:
        logger.error("audit trail cannot be written: %s", type(exc).__name__)
        raise ApiError(
            "audit_unavailable", "the audit trail cannot be written; try again later"
        ) from None


def _audit(request: Request, actor: str, role: str, action: str, outcome: str) -> None:
    event = AuditEvent(
        actor=actor,
        role=role,
        action=action,
        outcome=outcome,
        client=client_address(request)[:64],
        target=route_template(request),
    )
    with audited_write(request) as session:
        append(session, event)


def _refuse(request: Request, reason: str) -> NoReturn:
    _audit(request, ANONYMOUS, "", "auth_failed", reason)
    raise ApiError("unauthenticated", _MESSAGES[reason], dict(CHALLENGE))


def _from_bearer(request: Request, header: str) -> Principal:
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        _refuse(request, "malformed")
    with service_state(request).db.session() as session:
        result = authenticate_token(session, credentials)
    if isinstance(result, str):
        _refuse(request, result)
    user, _token = result
    return Principal(user.id, user.name, user.role, "token")


def _from_cookie(request: Request, cookie: str) -> Principal:
    with service_state(request).db.session() as session:
        found = find_session(session, cookie)
    if found is None:
        _refuse(request, "session_invalid")
    login, user = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        # bytes: compare_digest refuses non-ASCII str, and a header may hold anything
        if not hmac.compare_digest(sent.encode(), login.csrf_token.encode()):
            _audit(request, user.name, user.role, "csrf_failed", "denied")
            raise ApiError("csrf_failed", f"missing or wrong {CSRF_HEADER} header")
    return Principal(user.id, user.name, user.role, "session")


def authenticate(request: Request) -> Principal:
    """The caller of ``request``, from its bearer token or else its session cookie.

    Raises:
        ApiError: ``unauthenticated`` (401, ``WWW-Authenticate: Bearer``) for missing,
            malformed, unknown, wrong, revoked or expired credentials or a disabled user;
            ``csrf_failed`` (403) for a cookie request that changes something without the
            session's CSRF token; ``rate_limited`` (429) past the per-user rate;
            ``audit_unavailable`` (503) when a refusal cannot be audited.
    """
    header = request.headers.get("authorization")
    if header is not None:
        principal = _from_bearer(request, header)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            _refuse(request, "missing")
        principal = _from_cookie(request, cookie)
    service_state(request).rate_limiter.check(f"user:{principal.user_id}")
    request.state.principal = principal
    return principal


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that authenticates the request and admits only ``roles``.

    Raises:
        ValueError: (at import time) no role, or one not in `ROLES`.
    """
    if not roles or not set(roles) <= set(ROLES):
        raise ValueError(f"roles must be some of {ROLES}, not {roles}")
    allowed = frozenset(roles)
    needed = " or ".join(roles)

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if principal.role not in allowed:
            _audit(request, principal.name, principal.role, "forbidden", "denied")
            raise ApiError("forbidden", f"this needs the {needed} role")
        return principal

    return dependency


AnyUser = Annotated[Principal, Depends(require(*ROLES))]
Clinical = Annotated[Principal, Depends(require("admin", "clinician"))]
AdminUser = Annotated[Principal, Depends(require("admin"))]
