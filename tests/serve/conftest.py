"""Database fixtures for the service tests: each supported backend, a fresh database per test.

`database_url` runs a test once on SQLite and once on PostgreSQL, so a query that only works
on one of them fails here rather than in a deployment. The PostgreSQL server is started once
per session (`postgres_server`, well under a second) and each test gets its own database on
it, so tests never see each other's tables. Where PostgreSQL is not installed its cases are
skipped, with the reason, unless ``MEDSIGHT_REQUIRE_POSTGRES=1`` (CI sets it) makes that a
failure, so CI cannot pass by silently testing SQLite alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import (
    PostgresUnavailable,
    create_database,
    drop_database,
    running_postgres,
)

REQUIRE_ENV = "MEDSIGHT_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session; yields a URL to its ``medsight`` database.

    The URL is ``postgresql+psycopg://medsight:PASSWORD@127.0.0.1:PORT/medsight``; the
    server's default time zone is not UTC (see `postgres_server`). Tests that write should
    prefer `postgres_database_url`, which gives each test a database of its own.

    Skips when this machine cannot run PostgreSQL; fails instead when
    ``MEDSIGHT_REQUIRE_POSTGRES=1``.
    """
    try:
        with running_postgres() as url:
            yield url
            return
    except PostgresUnavailable as exc:
        reason = str(exc)
    # outside the except block, so that the report is one line, not a chain of tracebacks
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture
def postgres_database_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL server; dropped after the test.

    Connections the test left open are closed by the drop (``WITH (FORCE)``).
    """
    name = f"t_{uuid.uuid4().hex}"
    url = create_database(postgres_url, name)
    yield url
    drop_database(postgres_url, name)


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A URL to a SQLite file (not yet created) in the test's temp folder."""
    return f"sqlite:///{tmp_path / 'medsight.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each backend in turn (test ids ``[sqlite]`` and ``[postgresql]``).

    The PostgreSQL server starts only when a ``[postgresql]`` case first needs it, so
    ``-k sqlite`` runs need no PostgreSQL at all.
    """
    backend = "sqlite_database_url" if request.param == "sqlite" else "postgres_database_url"
    return str(request.getfixturevalue(backend))
