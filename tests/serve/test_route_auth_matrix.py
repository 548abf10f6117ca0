"""Every route of the service against every kind of credential: who gets in, who is refused.

The routes are enumerated from the app itself, and each must have an entry in `EXPECTED`
(``PUBLIC`` or the roles it admits), so a new route fails `test_every_route_has_an_expectation`
until someone decides who may call it. Each route x method is then called with no
credentials, broken ones (malformed, unknown, wrong secret, revoked, expired, disabled user,
stale session cookie) and a token of each role. With 28 route-methods (4 public), 10 bad credentials
and 3 roles the matrix has 364 cells; the assertion messages print the size actually run.

Pure HTTP behaviour, so SQLite only (the auth queries run on PostgreSQL in test_auth.py).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from service_kit import Service, running_service
from sqlalchemy import func, select

from medsight.serve.auth.tokens import TokenParts, new_token, split_token
from medsight.serve.auth.users import HOST_CLI, add_user
from medsight.serve.store.database import Database
from medsight.serve.store.schema import ROLES, ApiToken, AuditRecord, User, utcnow

PUBLIC = "public"
ANY_ROLE = frozenset(ROLES)

#: (method, path template) -> PUBLIC, or the roles admitted; a new route must be added here
EXPECTED: dict[tuple[str, str], str | frozenset[str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/v1/login"): PUBLIC,
    ("GET", "/readyz"): ANY_ROLE,
    ("GET", "/metrics"): frozenset({"admin", "service"}),
    ("GET", "/v1/models"): ANY_ROLE,
    ("GET", "/openapi.json"): ANY_ROLE,
    ("GET", "/docs"): ANY_ROLE,
    ("POST", "/v1/logout"): ANY_ROLE,
    ("GET", "/v1/me"): ANY_ROLE,
    ("GET", "/v1/admin/users"): frozenset({"admin"}),
    ("POST", "/v1/admin/users/{name}/revoke"): frozenset({"admin"}),
    ("POST", "/v1/predict/{model}"): frozenset({"clinician", "service"}),
    ("GET", "/v1/jobs"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}/files/{name:path}"): ANY_ROLE,
    # the viewer: its login page and static assets carry no data, so they are public
    ("GET", "/viewer/login"): PUBLIC,
    ("GET", "/viewer/static/{name}"): PUBLIC,
    ("GET", "/viewer"): ANY_ROLE,
    ("GET", "/viewer/study/{job_id}"): ANY_ROLE,
    ("GET", "/viewer/admin"): frozenset({"admin"}),
    ("GET", "/v1/worklist"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}/viewer"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}/viewer/image"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}/viewer/mask"): ANY_ROLE,
    ("GET", "/v1/jobs/{job_id}/viewer/heatmap"): ANY_ROLE,
    # DICOMweb: STOW-RS submits like predict; WADO-RS reads a job's results like its files
    ("POST", "/dicomweb/studies"): frozenset({"clinician", "service"}),
    ("GET", "/dicomweb/jobs/{job_id}/instances"): ANY_ROLE,
    ("GET", "/dicomweb/jobs/{job_id}/instances/metadata"): ANY_ROLE,
}

#: plausible values for path parameters; none names something that exists, so an admitted
#: caller gets an answer (404, 415, ...) without changing anything
PATH_VALUES = {
    "name": "nobody",
    "model": "cls2d",
    "job_id": str(uuid.UUID(int=7)),
}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` of every route the app answers, included routers flattened.

    A route without methods (a mount, a websocket) comes out as ``("ANY", path)``, so it
    cannot slip past the expectation table either.
    """

    def flat(routes: list) -> Iterator:
        for route in routes:
            # FastAPI keeps included routers as one entry; their routes are inside
            inner = getattr(route, "effective_route_contexts", None)
            yield from inner() if callable(inner) else [route]

    found = set()
    for route in flat(app.routes):
        methods = getattr(route, "methods", None) or {"ANY"}
        found |= {(method, route.path) for method in methods}
    return found


def url_for(path: str) -> str:
    return _PARAM.sub(lambda m: PATH_VALUES[m.group(1)], path)


@dataclass(frozen=True)
class Bad:
    """A credential that must be refused with 401 on every protected route."""

    name: str
    headers: dict[str, str]


@dataclass
class Matrix:
    service: Service
    bad: list[Bad]

    def call(self, method: str, path: str, headers: dict[str, str]):
        return self.service.client.request(method, url_for(path), headers=headers)

    def audit_count(self, action: str) -> int:
        with self.service.db.session() as session:
            return session.execute(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.action == action)
            ).scalar_one()


def _user_with_token(db: Database, name: str, change: Callable[[User, ApiToken], None]) -> str:
    """An admin (the role admitted everywhere but predict) whose token or user is spoiled."""
    with db.write() as session:
        user, token = add_user(session, name, "admin", token_days=30, actor=HOST_CLI)
        row = session.execute(select(ApiToken).where(ApiToken.user_id == user.id)).scalar_one()
        change(user, row)
        session.commit()
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    tmp = tmp_path_factory.mktemp("matrix")
    with running_service(tmp, f"sqlite:///{tmp}/medsight.db") as service:
        db = service.db
        revoked = _user_with_token(db, "revoked", lambda u, t: setattr(t, "revoked", True))
        past = utcnow() - dt.timedelta(minutes=1)
        expired = _user_with_token(db, "expired", lambda u, t: setattr(t, "expires", past))
        disabled = _user_with_token(db, "disabled", lambda u, t: setattr(u, "disabled", True))
        clinician = split_token(service.tokens.clinician)
        assert clinician is not None
        wrong_secret = TokenParts(clinician.public_id, new_token().secret).text
        bad = [
            Bad("none", {}),
            Bad("empty bearer", {"Authorization": "Bearer "}),
            Bad("malformed", _bearer("not-a-medsight-token")),
            Bad("basic scheme", {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="}),
            Bad("unknown id", _bearer(new_token().text)),
            Bad("wrong secret", _bearer(wrong_secret)),
            Bad("revoked", _bearer(revoked)),
            Bad("expired", _bearer(expired)),
            Bad("disabled user", _bearer(disabled)),
            Bad("stale session", {"Cookie": f"medsight_session={new_token().secret}"}),
        ]
        yield Matrix(service, bad)


def test_every_route_has_an_expectation(matrix: Matrix) -> None:
    found = app_routes(matrix.service.client.app)
    missing = sorted(found - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - found)
    assert not missing, f"routes with no entry in EXPECTED (decide who may call them): {missing}"
    assert not stale, f"EXPECTED names routes the app no longer has: {stale}"
    assert all(v == PUBLIC or v <= ANY_ROLE for v in EXPECTED.values())


def test_only_health_login_and_viewer_assets_answer_without_credentials(matrix: Matrix) -> None:
    answered = {
        path
        for method, path in EXPECTED
        if matrix.call(method, path, {}).status_code not in (401, 403)
    }
    assert answered == {"/healthz", "/v1/login", "/viewer/login", "/viewer/static/{name}"}
    assert answered == {path for (_, path), access in EXPECTED.items() if access == PUBLIC}


@pytest.mark.slow  # every protected route x every bad credential, each audited
def test_bad_credentials_are_refused_on_every_protected_route(matrix: Matrix) -> None:
    """Each protected route x method x bad credential answers 401 ``unauthenticated``."""
    protected = [key for key, access in EXPECTED.items() if access != PUBLIC]
    audited_before = matrix.audit_count("auth_failed")
    wrong = []
    for method, path in protected:
        for bad in matrix.bad:
            r = matrix.call(method, path, bad.headers)
            body = r.json()
            ok = (
                r.status_code == 401
                and set(body) == {"error"}
                and set(body["error"]) == {"code", "message"}
                and body["error"]["code"] == "unauthenticated"
                and r.headers.get("www-authenticate") == "Bearer"
            )
            if not ok:
                wrong.append(f"{method} {path} [{bad.name}] -> {r.status_code} {r.text[:120]}")
    cells = len(protected) * len(matrix.bad)
    assert not wrong, f"{len(wrong)} of {cells} cells not refused with 401:\n" + "\n".join(wrong)
    # every refusal leaves an audit record before it is answered
    assert matrix.audit_count("auth_failed") - audited_before == cells


def test_bad_credentials_do_not_matter_on_public_routes(matrix: Matrix) -> None:
    for (method, path), access in EXPECTED.items():
        if access == PUBLIC:
            for bad in matrix.bad:
                r = matrix.call(method, path, bad.headers)
                assert r.status_code not in (401, 403), (method, path, bad.name, r.text)


def test_each_role_gets_exactly_its_routes(matrix: Matrix) -> None:
    """Roles not admitted answer 403 ``forbidden``; admitted roles pass authentication."""
    forbidden_before = matrix.audit_count("forbidden")
    tokens = matrix.service.tokens
    wrong, refused = [], 0
    for (method, path), access in EXPECTED.items():
        for role in ROLES:
            r = matrix.call(method, path, tokens.header(role))
            admitted = access == PUBLIC or role in access
            if admitted:
                ok = r.status_code not in (401, 403)
            else:
                refused += 1
                ok = r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            if not ok:
                wrong.append(f"{method} {path} [{role}] -> {r.status_code} {r.text[:120]}")
    cells = len(EXPECTED) * len(ROLES)
    assert not wrong, f"{len(wrong)} of {cells} role cells wrong:\n" + "\n".join(wrong)
    assert matrix.audit_count("forbidden") - forbidden_before == refused


def test_cookie_session_writes_need_the_csrf_header(matrix: Matrix) -> None:
    """A logged-in viewer's cookie alone cannot change anything; GETs need no header."""
    client = matrix.service.client
    r = client.post("/v1/login", json={"name": "clinician", "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    cookie = {"Cookie": f"medsight_session={r.cookies['medsight_session']}"}
    csrf = r.json()["csrf_token"]
    client.cookies.clear()  # the other tests must not send this session by accident
    assert client.get("/v1/me", headers=cookie).json()["via"] == "session"

    writes = [key for key, access in EXPECTED.items() if access != PUBLIC]
    writes = [(m, p) for m, p in writes if m not in SAFE_METHODS]
    assert ("POST", "/v1/predict/{model}") in writes
    failed_before = matrix.audit_count("csrf_failed")
    for method, path in writes:
        for extra in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
            r = matrix.call(method, path, {**cookie, **extra})
            assert r.status_code == 403, (method, path, extra, r.text)
            assert r.json()["error"]["code"] == "csrf_failed", (method, path, extra)
    assert matrix.audit_count("csrf_failed") - failed_before == 3 * len(writes)
    # the same cookie with its token does get through (and ends the session)
    r = client.post("/v1/logout", headers={**cookie, "X-CSRF-Token": csrf})
    assert r.status_code == 204, r.text
    assert client.get("/v1/me", headers=cookie).status_code == 401
