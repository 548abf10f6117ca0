"""Viewer login sessions: the cookie a browser holds after `POST /v1/login`, and its CSRF token.

The cookie value is 256 random bits; the table keeps only its SHA-256 (a value that random
cannot be guessed from a fast hash, so argon2 is not needed here and each request costs one
hash). Every session has its own random CSRF token, which the browser must send back in
``X-CSRF-Token`` on requests that change something (`medsight.serve.auth.dependencies`).

These functions work in the caller's session; the caller commits (together with its audit
record) and, when it writes, uses `Database.write`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from medsight.serve.store.schema import LoginSession, User, utcnow

SESSION_BYTES = 32
#: base64url of `SESSION_BYTES` bytes; anything longer is not ours and is not hashed
MAX_COOKIE_LENGTH = 64


@dataclass(frozen=True)
class NewLoginSession:
    """What the login response hands the browser (the cookie value exists nowhere else)."""

    cookie_value: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires: dt.datetime


def _session_hash(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def create_session(session: Session, user: User, minutes: int) -> NewLoginSession:
    """Add a login session for ``user`` lasting ``minutes``.

    Args:
        session: a write session; the caller commits.
        user: the user who logged in.
        minutes: the session's lifetime (`ServiceSettings.session_minutes`).

    Returns:
        The cookie value and CSRF token to send to the browser, and the expiry time.
    """
    cookie_value = secrets.token_urlsafe(SESSION_BYTES)
    csrf_token = secrets.token_urlsafe(SESSION_BYTES)
    expires = utcnow() + dt.timedelta(minutes=minutes)
    session.add(
        LoginSession(
            session_hash=_session_hash(cookie_value),
            csrf_token=csrf_token,
            user_id=user.id,
            expires=expires,
        )
    )
    session.flush()
    return NewLoginSession(cookie_value, csrf_token, expires)


def find_session(session: Session, cookie_value: str) -> tuple[LoginSession, User] | None:
    """The live login session a cookie belongs to, with its user.

    Returns:
        None when the cookie matches no session, or the session expired, was revoked
        (logout, admin revoke) or belongs to a disabled user.
    """
    if not cookie_value or len(cookie_value) > MAX_COOKIE_LENGTH:
        return None
    row = session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(
            LoginSession.session_hash == _session_hash(cookie_value),
            LoginSession.revoked.is_(False),
            LoginSession.expires > utcnow(),
            User.disabled.is_(False),
        )
    ).first()
    return None if row is None else (row[0], row[1])


def revoke_session(session: Session, cookie_value: str) -> bool:
    """Revoke the session a cookie belongs to (logout); True when it was not yet revoked."""
    result = session.execute(
        update(LoginSession)
        .where(
            LoginSession.session_hash == _session_hash(cookie_value),
            LoginSession.revoked.is_(False),
        )
        .values(revoked=True)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_user_sessions(session: Session, user_id: int) -> int:
    """Revoke every unexpired session of a user; returns how many there were."""
    result = session.execute(
        update(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked.is_(False),
            LoginSession.expires > utcnow(),
        )
        .values(revoked=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
