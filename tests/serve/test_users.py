import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from medsight.errors import InputError
from medsight.serve.auth import tokens
from medsight.serve.auth.login_sessions import create_session, find_session
from medsight.serve.auth.users import (
    HOST_CLI,
    VERIFIED_TOKENS,
    Actor,
    add_user,
    authenticate_password,
    authenticate_token,
    disable_user,
    get_user,
    issue_token,
    list_users,
    revoke_user,
    set_password,
)
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import ApiToken, AuditRecord, User, utcnow

PASSWORD = "a long enough password"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A SQLite database."""
    database = Database(f"sqlite:///{tmp_path}/m.db")
    VERIFIED_TOKENS.clear()
    yield database
    database.close()


@pytest.fixture
def backend_db(database_url: str) -> Iterator[Database]:
    """SQLite, then PostgreSQL (conftest): for the tests whose queries differ by backend."""
    database = Database(database_url)
    VERIFIED_TOKENS.clear()
    yield database
    database.close()


def _add(db: Database, name: str, role: str = "clinician", password: str | None = None) -> str:
    with db.write() as session:
        _, token = add_user(session, name, role, token_days=30, actor=HOST_CLI, password=password)
        session.commit()
    return token


def _auth(db: Database, token: str) -> object:
    with db.session() as session:
        result = authenticate_token(session, token)
    return result if isinstance(result, str) else result[0].name


def _actions(db: Database) -> list[tuple[str, str, str]]:
    with db.session() as session:
        rows = session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()
        return [(r.actor, r.action, r.target) for r in rows]


def _count_argon2_checks(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The hashes each token check verifies against (None: the dummy), as they happen."""
    calls: list[str | None] = []
    real = tokens.verify_secret

    def counting(secret_hash: str | None, secret: str) -> bool:
        calls.append(secret_hash)
        return real(secret_hash, secret)

    monkeypatch.setattr(tokens, "verify_secret", counting)
    return calls


def test_add_user_issues_a_working_token_and_stores_only_its_hash(db: Database) -> None:
    token = _add(db, "alice")
    assert _auth(db, token) == "alice"
    with db.session() as session:
        row = session.execute(select(ApiToken)).scalar_one()
        assert row.secret_hash.startswith("$argon2id$")
        assert token.split("_", 2)[2] not in row.secret_hash
        assert verify_chain(session).ok
    assert _actions(db) == [
        ("host-cli", "user_add", "alice"),
        ("host-cli", "token_issue", "alice"),
    ]


@pytest.mark.parametrize("name", ["", "Alice", "-alice", ".a", "a b", "a/b", "a" * 65, "alice\n"])
def test_bad_names_are_refused(db: Database, name: str) -> None:
    with pytest.raises(InputError, match="user name"):
        _add(db, name)


def test_good_names_role_and_duplicates(db: Database) -> None:
    _add(db, "a")
    _add(db, "pacs-gw_1.site", role="service")
    with pytest.raises(InputError, match="already exists"):
        _add(db, "a")
    with pytest.raises(InputError, match="role"):
        _add(db, "bob", role="root")
    with pytest.raises(InputError, match="password"):
        _add(db, "carol", password="short")
    with db.session() as session:
        assert get_user(session, "carol") is None


def test_failure_reasons(backend_db: Database) -> None:
    token = _add(backend_db, "alice")
    parts = tokens.split_token(token)
    assert parts is not None
    assert _auth(backend_db, "nonsense") == "malformed"
    assert _auth(backend_db, tokens.new_token().text) == "unknown"
    assert (
        _auth(backend_db, tokens.TokenParts(parts.public_id, tokens.new_token().secret).text)
        == "wrong"
    )

    with backend_db.write() as session:
        session.execute(update(ApiToken).values(expires=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
    assert _auth(backend_db, token) == "expired"

    with backend_db.write() as session:
        session.execute(update(ApiToken).values(expires=utcnow() + dt.timedelta(days=1)))
        user = get_user(session, "alice")
        assert user is not None
        revoke_user(session, user, actor=HOST_CLI)
        session.commit()
    assert _auth(backend_db, token) == "revoked"


def test_disabled_user_cannot_use_token_password_or_session(backend_db: Database) -> None:
    token = _add(backend_db, "alice", password=PASSWORD)
    with backend_db.write() as session:
        user = get_user(session, "alice")
        assert user is not None
        login = create_session(session, user, 60)
        session.commit()
    with backend_db.write() as session:
        user = get_user(session, "alice")
        assert user is not None
        revoked = disable_user(session, user, actor=Actor("root", "admin", "10.0.0.1"))
        session.commit()
    assert (revoked.tokens, revoked.sessions) == (1, 1)
    with backend_db.session() as session:
        assert authenticate_password(session, "alice", PASSWORD) is None
        assert find_session(session, login.cookie_value) is None
    assert _auth(backend_db, token) == "revoked"
    assert ("root", "user_disable", "alice") in _actions(backend_db)


def test_unknown_token_id_still_costs_an_argon2_check(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_argon2_checks(monkeypatch)
    assert _auth(db, tokens.new_token().text) == "unknown"
    assert calls == [None]


def test_cache_skips_argon2_but_not_the_revocation_check(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _add(db, "alice")
    calls = _count_argon2_checks(monkeypatch)
    assert [_auth(db, token) for _ in range(3)] == ["alice"] * 3
    assert len(calls) == 1
    # a wrong secret for the same id is never served from the cache
    parts = tokens.split_token(token)
    assert parts is not None
    assert _auth(db, tokens.TokenParts(parts.public_id, tokens.new_token().secret).text) == "wrong"
    with db.write() as session:
        user = get_user(session, "alice")
        assert user is not None
        revoke_user(session, user, actor=HOST_CLI)
        session.commit()
    assert _auth(db, token) == "revoked"


def test_password_authentication(db: Database) -> None:
    _add(db, "alice", password=PASSWORD)
    _add(db, "svc", role="service")
    with db.session() as session:
        user = authenticate_password(session, "alice", PASSWORD)
        assert user is not None and user.name == "alice"
        assert authenticate_password(session, "alice", PASSWORD + "x") is None
        assert authenticate_password(session, "nobody", PASSWORD) is None
        assert authenticate_password(session, "svc", PASSWORD) is None  # token-only user
        assert authenticate_password(session, "Not A Name", PASSWORD) is None


def test_set_password_ends_sessions_and_is_audited(backend_db: Database) -> None:
    _add(backend_db, "alice", password=PASSWORD)
    with backend_db.write() as session:
        user = get_user(session, "alice")
        assert user is not None
        login = create_session(session, user, 60)
        session.commit()
    with backend_db.write() as session:
        user = get_user(session, "alice")
        assert user is not None
        with pytest.raises(InputError):
            set_password(session, user, "short", actor=HOST_CLI)
        set_password(session, user, "another long password", actor=HOST_CLI)
        session.commit()
    with backend_db.session() as session:
        assert find_session(session, login.cookie_value) is None
        assert authenticate_password(session, "alice", PASSWORD) is None
        assert authenticate_password(session, "alice", "another long password") is not None
        assert verify_chain(session).ok
    assert _actions(backend_db)[-1] == ("host-cli", "password_set", "alice")


def test_issue_token_and_list_users(backend_db: Database) -> None:
    first = _add(backend_db, "alice", role="admin", password=PASSWORD)
    _add(backend_db, "bob")
    with backend_db.write() as session:
        alice = get_user(session, "alice")
        assert alice is not None
        second = issue_token(session, alice, 7, actor=HOST_CLI)
        with pytest.raises(InputError, match="days"):
            issue_token(session, alice, 0, actor=HOST_CLI)
        session.commit()
    assert second != first and _auth(backend_db, second) == _auth(backend_db, first) == "alice"
    with backend_db.session() as session:
        users = {u.name: u for u in list_users(session)}
    assert list(users) == ["alice", "bob"]
    assert users["alice"].active_tokens == 2 and users["alice"].has_password
    assert users["bob"].active_tokens == 1 and not users["bob"].has_password
    expires = users["alice"].last_token_expires
    assert expires is not None and expires > utcnow() + dt.timedelta(days=29)
    assert not any(hasattr(u, "password_hash") for u in users.values())


def test_session_lookup(backend_db: Database) -> None:
    _add(backend_db, "alice")
    with backend_db.write() as session:
        user = session.execute(select(User)).scalar_one()
        login = create_session(session, user, 60)
        expired = create_session(session, user, -1)
        session.commit()
    with backend_db.session() as session:
        found = find_session(session, login.cookie_value)
        assert found is not None and found[1].name == "alice"
        assert found[0].csrf_token == login.csrf_token
        assert found[0].session_hash != login.cookie_value
        assert find_session(session, expired.cookie_value) is None
        assert find_session(session, "x" * 500) is None
        assert find_session(session, "") is None
