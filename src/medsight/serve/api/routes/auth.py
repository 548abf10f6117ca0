"""Login, logout, "who am I", and the admin's user routes.

`POST /v1/login` is the one route reachable without credentials (it is how a viewer gets
them). It answers the same 401 for an unknown user and a wrong password, and attempts are
rate-limited per client address (`LOGIN_PER_MINUTE`) to slow password guessing.

The session cookie is ``HttpOnly`` (page scripts cannot read it), ``SameSite=Strict`` (other
sites cannot make the browser send it) and ``Secure`` when the request came over HTTPS. The
CSRF token goes back both in the JSON body and in the readable ``medsight_csrf`` cookie, for
the viewer to send as ``X-CSRF-Token``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from medsight.serve.api.errors import ApiError
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.api.state import client_address, service_state
from medsight.serve.auth.dependencies import (
    ANONYMOUS,
    CHALLENGE,
    CSRF_COOKIE,
    SESSION_COOKIE,
    AdminUser,
    AnyUser,
    audited_write,
)
from medsight.serve.auth.login_sessions import create_session, revoke_session
from medsight.serve.auth.tokens import MAX_PASSWORD_LENGTH
from medsight.serve.auth.users import (
    Actor,
    authenticate_password,
    get_user,
    list_users,
    revoke_user,
)
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.schema import User

#: failed logins a client address may make per minute (`ServiceState.login_limiter`)
LOGIN_PER_MINUTE = 10

router = APIRouter()


class LoginRequest(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


def _login_limiter(request: Request) -> RateLimiter:
    return service_state(request).login_limiter


def _cookie_flags(request: Request) -> dict[str, Any]:
    return {"path": "/", "secure": request.url.scheme == "https", "samesite": "strict"}


@router.post("/v1/login")
def login(body: LoginRequest, request: Request, response: Response) -> dict[str, str]:
    """Check a name and password; on success set the session and CSRF cookies.

    Raises:
        ApiError: ``rate_limited`` (429) past `LOGIN_PER_MINUTE` attempts from one address;
            ``unauthenticated`` (401) for an unknown user, a wrong password or a disabled
            user, all with the same message.
    """
    client = client_address(request)
    _login_limiter(request).check(f"login:{client}")
    state = service_state(request)
    # argon2 runs outside the write transaction, so it does not hold SQLite's write lock
    with state.db.session() as session:
        checked = authenticate_password(session, body.name, body.password)
    with audited_write(request) as session:
        user = session.get(User, checked.id) if checked is not None else None
        if user is not None and not user.disabled:
            new = create_session(session, user, state.settings.session_minutes)
            append(session, AuditEvent(user.name, user.role, "login", "ok", client))
        else:
            user, new = None, None
            # name the target only when it is a real user's: a password typed into the name
            # field must not end up in the append-only audit trail
            target = body.name if get_user(session, body.name) is not None else ""
            append(session, AuditEvent(ANONYMOUS, "", "login", "failed", client, target=target))
    if user is None or new is None:
        raise ApiError("unauthenticated", "wrong user name or password", dict(CHALLENGE))
    max_age = state.settings.session_minutes * 60
    flags = _cookie_flags(request)
    response.set_cookie(SESSION_COOKIE, new.cookie_value, max_age, httponly=True, **flags)
    response.set_cookie(CSRF_COOKIE, new.csrf_token, max_age, httponly=False, **flags)
    return {"user": user.name, "role": user.role, "csrf_token": new.csrf_token}


@router.post("/v1/logout", status_code=204)
def logout(principal: AnyUser, request: Request) -> Response:
    """End the viewer session of the request's cookie and clear the cookies.

    Raises:
        ApiError: ``bad_request`` when called with an API token (tokens are revoked by an
            admin, not logged out).
    """
    if principal.via != "session":
        raise ApiError("bad_request", "logout ends a viewer login; API tokens are revoked")
    with audited_write(request) as session:
        revoke_session(session, request.cookies.get(SESSION_COOKIE, ""))
        append(
            session,
            AuditEvent(principal.name, principal.role, "logout", "ok", client_address(request)),
        )
    response = Response(status_code=204)
    flags = _cookie_flags(request)
    response.delete_cookie(SESSION_COOKIE, httponly=True, **flags)
    response.delete_cookie(CSRF_COOKIE, httponly=False, **flags)
    return response


@router.get("/v1/me")
def me(principal: AnyUser) -> dict[str, str]:
    """The caller's name, role and how they authenticated (``token`` or ``session``)."""
    return {"user": principal.name, "role": principal.role, "via": principal.via}


@router.get("/v1/admin/users")
def admin_list_users(principal: AdminUser, request: Request) -> dict[str, list[dict[str, Any]]]:
    """Every user with role, state and live-token count; never hashes or secrets."""
    with service_state(request).db.session() as session:
        summaries = list_users(session)
    return {"users": [dataclasses.asdict(summary) for summary in summaries]}


@router.post("/v1/admin/users/{name}/revoke")
def admin_revoke_user(name: str, principal: AdminUser, request: Request) -> dict[str, Any]:
    """Revoke all of a user's API tokens and login sessions (audited as ``user_revoke``).

    Raises:
        ApiError: ``not_found`` (404) when there is no such user.
    """
    actor = Actor(principal.name, principal.role, client_address(request))
    with audited_write(request) as session:
        user = get_user(session, name)
        if user is None:
            raise ApiError("not_found", "no such user")
        revoked = revoke_user(session, user, actor=actor)
    return {"user": name, "tokens_revoked": revoked.tokens, "sessions_revoked": revoked.sessions}
