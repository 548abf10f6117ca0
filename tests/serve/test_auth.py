"""The auth dependencies and routes, through a minimal app with the real routers."""

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.errors import ApiError
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.api.routes import auth as routes_auth
from medsight.serve.api.state import ServiceState
from medsight.serve.auth import dependencies as auth
from medsight.serve.auth.dependencies import AdminUser, AnyUser, Clinical
from medsight.serve.auth.tokens import TokenParts, new_token, split_token
from medsight.serve.auth.users import HOST_CLI, VERIFIED_TOKENS, add_user
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import ApiToken, AuditRecord, utcnow

PASSWORD = "clinician password 1"


@dataclass
class Service:
    app: FastAPI
    db: Database
    tokens: dict[str, str]

    def client(self, https: bool = False) -> TestClient:
        return TestClient(self.app, base_url="https://testserver" if https else "http://testserver")

    def last_audit(self) -> AuditRecord:
        with self.db.session() as session:
            assert verify_chain(session).ok
            return session.execute(
                select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)
            ).scalar_one()

    def audit_count(self) -> int:
        with self.db.session() as session:
            return len(session.execute(select(AuditRecord.seq)).all())


def _app(tmp_path: Path, db: Database) -> FastAPI:
    app = FastAPI()
    app.state.service = ServiceState(
        settings=ServiceSettings(data_dir=tmp_path),
        db=db,
        registry=ModelRegistry(tmp_path / "reg"),
        rate_limiter=RateLimiter(1000),
        metrics=None,  # type: ignore[arg-type]
        # only the auth routes run here: no models, jobs, uploads or DICOM
        models=None,  # type: ignore[arg-type]
        worker=None,  # type: ignore[arg-type]
        deid_policy=None,  # type: ignore[arg-type]
        sync_slots=None,  # type: ignore[arg-type]
        login_limiter=RateLimiter(routes_auth.LOGIN_PER_MINUTE),
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.body(), headers=exc.headers)

    app.include_router(routes_auth.router)

    @app.get("/t/any")
    def any_user(principal: AnyUser, request: Request) -> dict[str, Any]:
        return {"user": principal.name, "seen": request.state.principal == principal}

    @app.post("/t/clinical")
    def clinical(principal: Clinical) -> dict[str, str]:
        return {"user": principal.name}

    @app.get("/t/admin/{thing}")
    def admin(thing: str, principal: AdminUser) -> dict[str, str]:
        return {"user": principal.name}

    return app


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A database with three users, made once: argon2 hashing is slow on purpose."""
    path = tmp_path_factory.mktemp("template") / "m.db"
    db = Database(f"sqlite:///{path}")
    issued = {}
    with db.write() as session:
        for name, role, password in [
            ("root", "admin", None),
            ("alice", "clinician", PASSWORD),
            ("svc", "service", None),
        ]:
            _, issued[name] = add_user(
                session, name, role, token_days=30, actor=HOST_CLI, password=password
            )
        session.commit()
    db.close()  # the last connection's close checkpoints the WAL into the file
    return path, issued


@pytest.fixture
def service(tmp_path: Path, template: tuple[Path, dict[str, str]]) -> Iterator[Service]:
    shutil.copy(template[0], tmp_path / "m.db")
    db = Database(f"sqlite:///{tmp_path}/m.db")
    VERIFIED_TOKENS.clear()
    yield Service(_app(tmp_path, db), db, dict(template[1]))
    db.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: TestClient, name: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/v1/login", json={"name": name, "password": password})


def test_missing_credentials_are_401_and_audited(service: Service) -> None:
    response = service.client().get("/t/any")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthenticated"
    record = service.last_audit()
    assert (record.action, record.actor, record.outcome) == ("auth_failed", "anonymous", "missing")
    assert (record.client, record.target) == ("testclient", "/t/any")


def _bad_header(service: Service, reason: str) -> str:
    alice = service.tokens["alice"]
    parts = split_token(alice)
    assert parts is not None
    if reason == "malformed":
        return "Bearer not-a-token"
    if reason == "unknown":
        return f"Bearer {new_token().text}"
    if reason == "wrong":
        return f"Bearer {TokenParts(parts.public_id, new_token().secret).text}"
    change = {"revoked": {"revoked": True}, "expired": {"expires": utcnow() - dt.timedelta(1)}}
    with service.db.write() as session:
        session.execute(
            update(ApiToken).where(ApiToken.public_id == parts.public_id).values(**change[reason])
        )
        session.commit()
    return f"Bearer {alice}"


@pytest.mark.parametrize("reason", ["malformed", "unknown", "wrong", "revoked", "expired"])
def test_bad_tokens_are_401_and_audited(service: Service, reason: str) -> None:
    client = service.client()
    response = client.get("/t/any", headers={"Authorization": _bad_header(service, reason)})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    record = service.last_audit()
    assert (record.action, record.actor, record.outcome) == ("auth_failed", "anonymous", reason)


def test_unknown_and_wrong_tokens_read_the_same(service: Service) -> None:
    client = service.client()
    unknown = client.get("/t/any", headers={"Authorization": _bad_header(service, "unknown")})
    wrong = client.get("/t/any", headers={"Authorization": _bad_header(service, "wrong")})
    assert unknown.json() == wrong.json()


def test_basic_auth_header_is_malformed(service: Service) -> None:
    response = service.client().get("/t/any", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401
    assert service.last_audit().outcome == "malformed"


def test_good_token_and_roles(service: Service) -> None:
    client = service.client()
    response = client.get("/t/any", headers=_bearer(service.tokens["svc"]))
    assert response.json() == {"user": "svc", "seen": True}
    assert client.get("/t/admin/x", headers=_bearer(service.tokens["root"])).status_code == 200
    before = service.audit_count()
    assert client.get("/v1/me", headers=_bearer(service.tokens["svc"])).json() == {
        "user": "svc",
        "role": "service",
        "via": "token",
    }
    assert service.audit_count() == before  # a successful request is not an auth event

    denied = client.get("/t/admin/secret-thing", headers=_bearer(service.tokens["alice"]))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    record = service.last_audit()
    assert (record.action, record.actor, record.role, record.outcome, record.target) == (
        "forbidden",
        "alice",
        "clinician",
        "denied",
        "/t/admin/{thing}",
    )
    denied = client.post("/t/clinical", headers=_bearer(service.tokens["svc"]))
    assert denied.status_code == 403


def test_login_sets_strict_http_only_cookies(service: Service) -> None:
    client = service.client()
    response = _login(client)
    assert response.status_code == 200
    body = response.json()
    assert (body["user"], body["role"]) == ("alice", "clinician")
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session_cookie = cookies["medsight_session"].lower()
    assert "httponly" in session_cookie and "samesite=strict" in session_cookie
    assert "path=/" in session_cookie and "secure" not in session_cookie
    csrf_cookie = cookies["medsight_csrf"].lower()
    assert "httponly" not in csrf_cookie and "samesite=strict" in csrf_cookie
    assert body["csrf_token"] == client.cookies["medsight_csrf"]
    assert client.get("/v1/me").json() == {"user": "alice", "role": "clinician", "via": "session"}
    record = service.last_audit()
    assert (record.action, record.actor, record.outcome) == ("login", "alice", "ok")


def test_login_over_https_sets_secure_cookies(service: Service) -> None:
    response = _login(service.client(https=True))
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("secure" in c.lower() for c in cookies)


def test_unknown_user_and_wrong_password_read_the_same(service: Service) -> None:
    client = service.client()
    unknown = _login(client, name="mallory")
    assert service.last_audit().target == ""  # never a typed name that is not a user's
    wrong = _login(client, password=PASSWORD + "!")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    record = service.last_audit()
    assert (record.action, record.actor, record.outcome, record.target) == (
        "login",
        "anonymous",
        "failed",
        "alice",
    )
    assert "medsight_session" not in client.cookies
    # a token-only user has no password to log in with
    assert _login(client, name="svc").status_code == 401


def test_cookie_writes_need_the_csrf_header_bearer_writes_do_not(service: Service) -> None:
    client = service.client()
    csrf = _login(client).json()["csrf_token"]
    assert client.get("/t/any").status_code == 200  # reads need no CSRF token
    missing = client.post("/t/clinical")
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf_failed"
    record = service.last_audit()
    assert (record.action, record.actor, record.outcome) == ("csrf_failed", "alice", "denied")
    wrong = client.post("/t/clinical", headers={"X-CSRF-Token": "x" + csrf[1:]})
    assert wrong.status_code == 403
    odd = client.post("/t/clinical", headers={"X-CSRF-Token": "é".encode("latin-1")})
    assert odd.status_code == 403
    assert client.post("/t/clinical", headers={"X-CSRF-Token": csrf}).status_code == 200

    bearer = service.client()
    assert bearer.post("/t/clinical", headers=_bearer(service.tokens["alice"])).status_code == 200


def test_logout_ends_the_session(service: Service) -> None:
    client = service.client()
    csrf = _login(client).json()["csrf_token"]
    assert client.post("/v1/logout").status_code == 403  # logout needs the CSRF token too
    cookie = client.cookies["medsight_session"]
    response = client.post("/v1/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert service.last_audit().action == "logout"
    assert "medsight_session" not in client.cookies
    replay = service.client()
    replay.cookies.set("medsight_session", cookie)
    assert replay.get("/t/any").status_code == 401
    assert service.last_audit().outcome == "session_invalid"

    token_logout = service.client().post("/v1/logout", headers=_bearer(service.tokens["alice"]))
    assert token_logout.status_code == 400


def test_admin_lists_users_without_secrets(service: Service) -> None:
    client = service.client()
    response = client.get("/v1/admin/users", headers=_bearer(service.tokens["root"]))
    assert response.status_code == 200
    users = {u["name"]: u for u in response.json()["users"]}
    assert set(users) == {"root", "alice", "svc"}
    assert users["alice"]["has_password"] and users["alice"]["active_tokens"] == 1
    assert "argon2" not in response.text and service.tokens["alice"] not in response.text
    forbidden = client.get("/v1/admin/users", headers=_bearer(service.tokens["alice"]))
    assert forbidden.status_code == 403


def test_admin_revoke_ends_tokens_and_sessions(service: Service) -> None:
    client = service.client()
    _login(client)
    assert client.get("/t/any").status_code == 200
    admin = service.client()
    response = admin.post("/v1/admin/users/alice/revoke", headers=_bearer(service.tokens["root"]))
    assert response.json() == {"user": "alice", "tokens_revoked": 1, "sessions_revoked": 1}
    record = service.last_audit()
    assert (record.actor, record.action, record.target) == ("root", "user_revoke", "alice")
    assert client.get("/t/any").status_code == 401
    alice = service.client().get("/t/any", headers=_bearer(service.tokens["alice"]))
    assert alice.status_code == 401 and alice.json()["error"]["message"].startswith("token revoked")
    missing = admin.post("/v1/admin/users/nobody/revoke", headers=_bearer(service.tokens["root"]))
    assert missing.status_code == 404


def test_per_user_rate_limit(service: Service) -> None:
    service.app.state.service.rate_limiter = RateLimiter(2)
    client = service.client()
    headers = _bearer(service.tokens["svc"])
    assert [client.get("/t/any", headers=headers).status_code for _ in range(2)] == [200, 200]
    limited = client.get("/t/any", headers=headers)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # another user has their own bucket
    assert client.get("/t/any", headers=_bearer(service.tokens["root"])).status_code == 200


def test_login_attempts_are_rate_limited_per_address(service: Service) -> None:
    service.app.state.service.login_limiter = RateLimiter(3)
    client = service.client()
    assert [_login(client, name="nobody").status_code for _ in range(3)] == [401] * 3
    limited = _login(client)  # even the right password waits
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_refusal_that_cannot_be_audited_is_503(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(auth, "append", broken)
    response = service.client().get("/t/any")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"


def test_auth_flow_on_each_backend(tmp_path: Path, database_url: str) -> None:
    """Token, login, CSRF, expiry and revocation through HTTP on SQLite and PostgreSQL."""
    db = Database(database_url)
    try:
        with db.write() as session:
            _, alice = add_user(
                session, "alice", "clinician", token_days=30, actor=HOST_CLI, password=PASSWORD
            )
            _, root = add_user(session, "root", "admin", token_days=30, actor=HOST_CLI)
            session.commit()
        service = Service(_app(tmp_path, db), db, {"alice": alice, "root": root})
        client = service.client()
        assert client.get("/t/any", headers=_bearer(alice)).status_code == 200
        csrf = _login(client).json()["csrf_token"]
        assert client.post("/t/clinical").status_code == 403
        assert client.post("/t/clinical", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert _bad_header(service, "expired") == f"Bearer {alice}"
        assert client.get("/t/any", headers=_bearer(alice)).status_code == 401
        assert service.last_audit().outcome == "expired"
        admin = service.client().post("/v1/admin/users/alice/revoke", headers=_bearer(root))
        assert admin.json()["sessions_revoked"] == 1
        assert client.get("/t/any").status_code == 401
        assert service.last_audit().outcome == "session_invalid"  # last_audit verifies the chain
    finally:
        db.close()
