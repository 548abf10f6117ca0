"""`medsight users`: tokens shown once, only hashes stored, changes take effect on the service."""

from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from medsight.cli.users import app
from medsight.errors import InputError
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.errors import ApiError
from medsight.serve.api.rate_limit import RateLimiter
from medsight.serve.api.routes import auth as routes_auth
from medsight.serve.api.state import ServiceState
from medsight.serve.auth.users import authenticate_password
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import ApiToken, AuditRecord

PASSWORD = "a viewer password"


def users(db_url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--database-url", db_url], input=input)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/m.db"


def _service(tmp_path: Path, db_url: str) -> TestClient:
    service = FastAPI()
    service.state.service = ServiceState(
        settings=ServiceSettings(data_dir=tmp_path),
        db=Database(db_url),
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

    @service.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.body(), headers=exc.headers)

    service.include_router(routes_auth.router)
    return TestClient(service)


def test_add_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path, db_url: str) -> None:
    result = users(db_url, "add", "alice", "--role", "clinician", "--days", "5")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("ms_") and "\n" not in token
    assert result.output.count(token) == 1
    assert "will not be shown again" in result.stderr

    db = Database(db_url)
    with db.session() as session:
        row = session.execute(select(ApiToken)).scalar_one()
        assert row.secret_hash.startswith("$argon2id$")
        actions = session.execute(select(AuditRecord.actor, AuditRecord.action)).all()
        assert [tuple(a) for a in actions] == [
            ("host-cli", "user_add"),
            ("host-cli", "token_issue"),
        ]
        assert verify_chain(session).ok
    db.close()
    secret = token.split("_", 2)[2].encode()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("m.db*"))
    assert secret not in stored


def test_revoke_takes_effect_on_the_service(tmp_path: Path, db_url: str) -> None:
    token = users(db_url, "add", "svc", "--role", "service").stdout.strip()
    client = _service(tmp_path, db_url)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/me", headers=headers).json()["user"] == "svc"

    result = users(db_url, "revoke", "svc")
    assert result.exit_code == 0 and "revoked 1 token(s)" in result.stdout
    assert client.get("/v1/me", headers=headers).status_code == 401

    new = users(db_url, "token", "svc", "--days", "1").stdout.strip()
    assert new != token
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_password_prompt_sets_a_viewer_login(tmp_path: Path, db_url: str) -> None:
    entered = f"{PASSWORD}\n{PASSWORD}\n"
    result = users(
        db_url, "add", "alice", "--role", "clinician", "--password-prompt", input=entered
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    client = _service(tmp_path, db_url)
    assert client.post("/v1/login", json={"name": "alice", "password": PASSWORD}).status_code == 200

    changed = "another viewer password"
    result = users(
        db_url, "password", "alice", input=f"{changed}\nmistyped\n{changed}\n{changed}\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output  # asked twice, and again on a mismatch
    db = Database(db_url)
    with db.session() as session:
        assert authenticate_password(session, "alice", PASSWORD) is None
        assert authenticate_password(session, "alice", changed) is not None
    db.close()
    # the old login session ended with the password change
    assert client.get("/v1/me").status_code == 401


def test_list_shows_users_without_secrets(db_url: str) -> None:
    token = users(db_url, "add", "alice", "--role", "admin").stdout.strip()
    users(db_url, "add", "bob", "--role", "clinician")
    result = users(db_url, "list")
    assert result.exit_code == 0
    assert "alice" in result.stdout and "bob" in result.stdout and "clinician" in result.stdout
    assert token not in result.stdout and "argon2" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["add", "Alice", "--role", "admin"], "user name"),
        (["add", "alice", "--role", "root"], "role"),
        (["token", "nobody"], "no user 'nobody'"),
        (["revoke", "nobody"], "no user 'nobody'"),
        (["password", "nobody"], "no user 'nobody'"),
        (["token", "alice", "--days", "0"], "days"),
    ],
)
def test_errors_are_one_line_input_errors(db_url: str, args: list[str], fragment: str) -> None:
    if args[:2] == ["token", "alice"]:
        users(db_url, "add", "alice", "--role", "admin")
    result = users(db_url, *args)
    assert isinstance(result.exception, InputError), result.output
    message = str(result.exception)
    assert fragment in message and "\n" not in message


def test_short_password_is_refused_before_anything_is_written(db_url: str) -> None:
    result = users(
        db_url, "add", "alice", "--role", "admin", "--password-prompt", input="short\nshort\n"
    )
    assert isinstance(result.exception, InputError) and "12" in str(result.exception)
    assert "alice" not in users(db_url, "list").stdout


def test_database_url_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSIGHT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MEDSIGHT_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["add", "alice", "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "medsight.db").is_file()

    monkeypatch.setenv("MEDSIGHT_DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    assert CliRunner().invoke(app, ["add", "bob", "--role", "admin"]).exit_code == 0
    assert (tmp_path / "other.db").is_file()
