"""Open the service database (SQLite by default, PostgreSQL by URL) and migrate its schema.

Migrations are an ordered list of functions applied from the version recorded in
``schema_version``; the service runs them on start, under a lock, in one transaction each.
Why not Alembic: the schema is small and versioned with the code; a list of Python steps
keeps one install and one code path for SQLite and PostgreSQL, and the service migrates
itself on start as the issue asks (Alembic would need its own environment and CLI).

SQLite is opened in WAL mode with a busy timeout, so the API and the job worker (threads
of one process) can read while one writes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from medsight.errors import InputError
from medsight.serve.store.schema import (
    ApiToken,
    AuditHead,
    AuditRecord,
    Base,
    Delivery,
    DicomSeries,
    Job,
    LoginSession,
    SchemaVersion,
    User,
)

GENESIS_HASH = "0" * 64
WRITE_OPTION = "medsight_write"


def _v1(conn: Connection) -> None:
    tables = [SchemaVersion, User, ApiToken, LoginSession, Job, AuditHead, AuditRecord]
    Base.metadata.create_all(conn, tables=[m.__table__ for m in tables])  # type: ignore[misc]
    conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS_HASH))


def _v2(conn: Connection) -> None:
    """The DICOM node: series being received, result deliveries."""
    tables = [DicomSeries, Delivery]
    Base.metadata.create_all(conn, tables=[m.__table__ for m in tables])  # type: ignore[misc]


def _v3(conn: Connection) -> None:
    """Series sent over DICOMweb belong to their sender.

    `_v2` creates its tables from the current models, so on a new database the column is
    already there; only a database migrated to v2 earlier lacks it.
    """
    columns = {c["name"] for c in inspect(conn).get_columns("dicom_series")}
    if "owner_id" not in columns:
        conn.execute(
            text("ALTER TABLE dicom_series ADD COLUMN owner_id INTEGER REFERENCES users(id)")
        )


#: the PostgreSQL channel a NOTIFY is sent on whenever a job becomes queued
JOBS_CHANNEL = "medsight_jobs"


def _v4(conn: Connection) -> None:
    """Leases for several worker processes: lease token, worker id and heartbeat on jobs, a
    lease on deliveries, and (PostgreSQL) a trigger that wakes idle workers on every enqueue.

    The trigger covers every place a job becomes queued (an upload, a DICOM series, a
    re-queued stalled job) in the transaction that queues it: PostgreSQL delivers the
    NOTIFY on commit, and only then.
    """
    timestamp = DateTime(timezone=True).compile(dialect=conn.dialect)
    wanted = {
        "jobs": [
            ("lease_token", "VARCHAR(36)"),
            ("worker_id", "VARCHAR(64)"),
            ("heartbeat_at", timestamp),
        ],
        "deliveries": [("lease_token", "VARCHAR(36)")],
    }
    for table, columns in wanted.items():
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        for name, sql_type in columns:
            if name not in have:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION medsight_job_queued() RETURNS trigger AS $$ "
                f"BEGIN PERFORM pg_notify('{JOBS_CHANNEL}', ''); RETURN NULL; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        conn.execute(text("DROP TRIGGER IF EXISTS jobs_queued_notify ON jobs"))
        conn.execute(
            text(
                "CREATE TRIGGER jobs_queued_notify AFTER INSERT OR UPDATE OF state ON jobs "
                "FOR EACH ROW WHEN (NEW.state = 'queued') "
                "EXECUTE FUNCTION medsight_job_queued()"
            )
        )


#: migration N brings the schema from version N-1 to N
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (`_sqlite_begin`)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is
    # locked" at once (no busy wait) while another process is switching it too: retry.
    for attempt in range(50):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                break
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes SQLite's write lock at BEGIN, waiting (busy_timeout) for other
    # writers, so it reads the latest commit; a deferred one that read first and then wrote
    # after another commit would fail with SQLITE_BUSY_SNAPSHOT instead of waiting.
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    Raises:
        InputError: the URL cannot be parsed or names an unsupported database.
    """
    if url.startswith("sqlite") and (
        url.rstrip("/") in ("sqlite:", "sqlite:") or ":memory:" in url
    ):
        # each pooled connection would see its own empty database
        raise InputError("database URL: give a SQLite file (sqlite:///PATH), not in-memory")
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                hide_parameters=True,  # bound values (a typed user name) never reach a log
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if url.startswith("postgresql"):
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return create_engine(
                url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
            )
    except (ArgumentError, ValueError) as exc:
        raise InputError(f"database URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise InputError(f"database URL: driver {exc.name} is not installed") from None
    raise InputError("database URL: only sqlite:/// and postgresql:// URLs are supported")


def current_version(conn: Connection) -> int:
    """The schema version stored in the database (0 for an empty database)."""
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return 0
    row = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).first()
    return int(row[0]) if row else 0


def existing_schema_version(engine: Engine) -> int:
    """The schema version of the medsight database ``engine`` points at, never creating one.

    For tools that work on a service's database (audit, purge): a mistyped URL must be an
    error, not a new empty database that then looks intact.

    Raises:
        InputError: a SQLite file that does not exist, a database that cannot be reached, or
            one with no medsight schema.
    """
    shown = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name == "sqlite":
        path = engine.url.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise InputError(f"{shown}: no such database file; give --database-url")
    try:
        with engine.connect() as conn:
            version = current_version(conn)
    except OperationalError as exc:
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        raise InputError(f"{shown}: database cannot be opened: {reason}") from None
    if version == 0:
        raise InputError(f"{shown}: not a medsight database (no schema); give --database-url")
    return version


def migrate(engine: Engine) -> int:
    """Bring the schema to `SCHEMA_VERSION`; returns the version it started from.

    Raises:
        InputError: the database is newer than this medsight, or cannot be reached.
    """
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            if engine.dialect.name == "postgresql":
                # two services starting at once must not both migrate
                conn.execute(text("SELECT pg_advisory_xact_lock(726173)"))
            start = current_version(conn)
            if start > SCHEMA_VERSION:
                raise InputError(
                    f"database schema is version {start}, newer than this medsight "
                    f"({SCHEMA_VERSION}); upgrade medsight"
                )
            for step in MIGRATIONS[start:]:
                step(conn)
            if start == 0:
                conn.execute(insert(SchemaVersion).values(id=1, version=SCHEMA_VERSION))
            elif start < SCHEMA_VERSION:
                conn.execute(
                    update(SchemaVersion)
                    .where(SchemaVersion.id == 1)
                    .values(version=SCHEMA_VERSION)
                )
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        # the driver's first line says why (refused, no such host, bad password); the URL's
        # password is never part of it
        raise InputError(f"database cannot be opened: {reason[:200]}") from None
    return start


class Database:
    """An engine and its session factory, with the schema migrated."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def session(self) -> Session:
        """A new ORM session for reading (use as a context manager)."""
        return self.sessions()

    def write(self) -> Session:
        """A new ORM session for a transaction that writes (use as a context manager).

        On SQLite it begins with the write lock held, so its reads see the latest commit and
        its commit cannot fail on a concurrent writer; on PostgreSQL it is a plain session.
        """
        return self.write_sessions()

    def close(self) -> None:
        self.engine.dispose()
