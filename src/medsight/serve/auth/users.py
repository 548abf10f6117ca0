"""Users and their API tokens: add, issue, revoke, disable, set passwords, and authenticate.

Every function works in the caller's SQLAlchemy session and never commits: a change and its
audit record (`medsight.serve.store.audit.append`, one per change) are committed together by the
caller, in a write session (`Database.write`), so no change exists without its record. The
actor of a change is an `Actor`: the admin calling the API, or `HOST_CLI` for
`medsight users` run on the host.

A new token's text is returned once and never stored (only its argon2 hash is). Verifying
a token costs tens of milliseconds of argon2, so successful verifications are remembered
for `CACHE_TTL_S` seconds, keyed by the SHA-256 of the full token text; the token's row is
still read on every request, so revocation, expiry and disabling take effect at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from medsight.errors import InputError
from medsight.serve.auth import tokens
from medsight.serve.auth.login_sessions import revoke_user_sessions
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.schema import ROLES, ApiToken, User, utcnow

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_TOKEN_DAYS = 3650
CACHE_TTL_S = 60.0
CACHE_MAX_ENTRIES = 4096

#: why a token was refused, as written to the audit record's outcome
AuthFailure = Literal["malformed", "unknown", "wrong", "revoked", "expired", "disabled"]


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for its audit record."""

    name: str
    role: str
    client: str = ""


HOST_CLI = Actor("host-cli", "host")


@dataclass(frozen=True)
class UserSummary:
    """A user as listed to admins: no hashes, no secrets."""

    name: str
    role: str
    disabled: bool
    has_password: bool
    created: dt.datetime
    active_tokens: int
    last_token_expires: dt.datetime | None


@dataclass(frozen=True)
class Revoked:
    """What `revoke_user` revoked."""

    tokens: int
    sessions: int


def _as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC time (SQLite hands back naive datetimes, stored as UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _VerifiedTokens:
    """Recently verified tokens: SHA-256 of the token text -> (row id, hash, deadline)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[int, str, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token_text: str) -> str:
        return hashlib.sha256(token_text.encode()).hexdigest()

    def hit(self, token_text: str, token: ApiToken) -> bool:
        """Whether ``token_text`` was verified against this very row, recently."""
        with self._lock:
            entry = self._entries.get(self._key(token_text))
        if entry is None:
            return False
        token_id, secret_hash, deadline = entry
        return (
            token_id == token.id
            and secret_hash == token.secret_hash
            and time.monotonic() < deadline
        )

    def add(self, token_text: str, token: ApiToken) -> None:
        now = time.monotonic()
        key = self._key(token_text)
        with self._lock:
            self._entries.pop(key, None)  # re-added entries move to the end (newest)
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[2] > now}
                while len(self._entries) >= self.max_entries:  # all live: drop the oldest
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = (token.id, token.secret_hash, now + self.ttl_s)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


VERIFIED_TOKENS = _VerifiedTokens(CACHE_TTL_S, CACHE_MAX_ENTRIES)


def check_name(name: str) -> None:
    """Refuse a user name that is not lower-case letters, digits and ``._-`` (1-64 long).

    Raises:
        InputError: the name breaks the rule (names appear in audit records and URLs).
    """
    if NAME_PATTERN.fullmatch(name) is None:
        raise InputError(
            f"user name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit"
        )


def check_role(role: str) -> None:
    """Refuse a role that is not one of `ROLES`.

    Raises:
        InputError: an unknown role (a typo must not create a user no route admits).
    """
    if role not in ROLES:
        raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InputError(f"token lifetime: use 1-{MAX_TOKEN_DAYS} days, not {days}")


def _audit(session: Session, actor: Actor, action: str, target: str) -> None:
    append(
        session,
        AuditEvent(
            actor=actor.name,
            role=actor.role,
            action=action,
            outcome="ok",
            client=actor.client,
            target=target,
        ),
    )


def get_user(session: Session, name: str) -> User | None:
    """The user called ``name``, or None."""
    return session.execute(select(User).where(User.name == name)).scalar_one_or_none()


def issue_token(session: Session, user: User, days: int, *, actor: Actor) -> str:
    """Add a new API token for ``user``, valid for ``days``; returns its text (shown once).

    Raises:
        InputError: ``days`` is outside 1-`MAX_TOKEN_DAYS`.
    """
    _check_days(days)
    parts = tokens.new_token()
    session.add(
        ApiToken(
            public_id=parts.public_id,
            user_id=user.id,
            secret_hash=tokens.hash_secret(parts.secret),
            expires=utcnow() + dt.timedelta(days=days),
        )
    )
    session.flush()
    _audit(session, actor, "token_issue", user.name)
    return parts.text


def add_user(
    session: Session,
    name: str,
    role: str,
    *,
    token_days: int,
    actor: Actor,
    password: str | None = None,
) -> tuple[User, str]:
    """Add a user with a first API token (and a password, for viewer login).

    Args:
        session: a write session; the caller commits.
        name: the new user's name (`check_name`).
        role: one of `ROLES`.
        token_days: lifetime of the first token.
        actor: who adds the user.
        password: the viewer login password, or None for token-only access.

    Returns:
        The user and the first token's text: print it once; only its hash is kept.

    Raises:
        InputError: a bad name, role, lifetime or password, or the name is taken.
    """
    check_name(name)
    check_role(role)
    _check_days(token_days)
    if get_user(session, name) is not None:
        raise InputError(f"user {name!r} already exists")
    password_hash = tokens.hash_password(password) if password is not None else None
    user = User(name=name, role=role, password_hash=password_hash, disabled=False)
    session.add(user)
    session.flush()
    _audit(session, actor, "user_add", name)
    return user, issue_token(session, user, token_days, actor=actor)


def revoke_user(session: Session, user: User, *, actor: Actor) -> Revoked:
    """Revoke all of ``user``'s API tokens and login sessions.

    The user stays, and can be given a new token (`issue_token`).
    """
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        .values(revoked=True)
    )
    tokens_revoked = int(result.rowcount)  # type: ignore[attr-defined]
    revoked = Revoked(tokens_revoked, revoke_user_sessions(session, user.id))
    _audit(session, actor, "user_revoke", user.name)
    return revoked


def disable_user(session: Session, user: User, *, actor: Actor) -> Revoked:
    """Disable ``user``: no token, session or password works for them any more.

    Audited as ``user_revoke`` (tokens and sessions) and ``user_disable``.
    """
    user.disabled = True
    revoked = revoke_user(session, user, actor=actor)
    _audit(session, actor, "user_disable", user.name)
    return revoked


def set_password(session: Session, user: User, password: str, *, actor: Actor) -> None:
    """Set ``user``'s viewer password and end their login sessions (API tokens stay).

    Raises:
        InputError: the password breaks `tokens.check_password_rules`.
    """
    user.password_hash = tokens.hash_password(password)
    revoke_user_sessions(session, user.id)
    _audit(session, actor, "password_set", user.name)


def list_users(session: Session) -> list[UserSummary]:
    """Every user by name, with how many unrevoked, unexpired tokens each holds."""
    now = utcnow()
    live = dict(
        (user_id, (count, last))
        for user_id, count, last in session.execute(
            select(ApiToken.user_id, func.count(ApiToken.id), func.max(ApiToken.expires))
            .where(ApiToken.revoked.is_(False), ApiToken.expires > now)
            .group_by(ApiToken.user_id)
        )
    )
    summaries = []
    for user in session.execute(select(User).order_by(User.name)).scalars():
        count, last = live.get(user.id, (0, None))
        summaries.append(
            UserSummary(
                name=user.name,
                role=user.role,
                disabled=user.disabled,
                has_password=user.password_hash is not None,
                created=_as_utc(user.created),
                active_tokens=int(count),
                last_token_expires=None if last is None else _as_utc(last),
            )
        )
    return summaries


def authenticate_token(session: Session, token_text: str) -> tuple[User, ApiToken] | AuthFailure:
    """The user and token that ``token_text`` proves, or why it proves nothing.

    The secret is checked before the token's state, so only its holder can learn that a
    token was revoked or expired; an unknown public id costs as much as a wrong secret.

    Returns:
        ``(user, token)``, or one of ``malformed`` (not ``ms_<id>_<secret>``), ``unknown``
        (no such token id), ``wrong`` (secret does not match), ``revoked``, ``expired``,
        ``disabled`` (the user is).
    """
    parts = tokens.split_token(token_text)
    if parts is None:
        return "malformed"
    token = session.execute(
        select(ApiToken).where(ApiToken.public_id == parts.public_id)
    ).scalar_one_or_none()
    if token is None or not VERIFIED_TOKENS.hit(token_text, token):
        verified = tokens.verify_secret(token.secret_hash if token else None, parts.secret)
        if token is None:
            return "unknown"
        if not verified:
            return "wrong"
        VERIFIED_TOKENS.add(token_text, token)
    if token.revoked:
        return "revoked"
    if _as_utc(token.expires) <= utcnow():
        return "expired"
    user = session.get(User, token.user_id)
    if user is None or user.disabled:
        return "disabled"
    return user, token


def authenticate_password(session: Session, name: str, password: str) -> User | None:
    """The enabled user whose name and password these are, or None.

    Unknown names, users without a password and disabled users all cost one argon2 check
    and give the same None, so neither the answer nor its timing tells which it was.
    """
    user = get_user(session, name) if NAME_PATTERN.fullmatch(name) else None
    verified = tokens.verify_password(user.password_hash if user else None, password)
    if user is None or not verified or user.disabled:
        return None
    return user
