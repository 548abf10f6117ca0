"""The service database: migrated on open, idempotently, refused when newer; SQLite writers wait."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from medsight.errors import InputError
from medsight.serve.store.database import GENESIS_HASH, SCHEMA_VERSION, Database, migrate
from medsight.serve.store.schema import AuditHead, Base, Job, SchemaVersion, User


def _add_user(db: Database, name: str = "ada") -> None:
    with db.write() as session:
        session.add(User(name=name, role="admin"))
        session.commit()


def test_open_creates_the_schema(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= set(Base.metadata.tables)
        with db.session() as session:
            assert session.scalars(select(SchemaVersion.version)).all() == [SCHEMA_VERSION]
            head = session.execute(select(AuditHead.id, AuditHead.seq, AuditHead.hash)).all()
            assert head == [(1, 0, GENESIS_HASH)]
    finally:
        db.close()


def test_reopening_keeps_data_and_version(database_url: str) -> None:
    first = Database(database_url)
    _add_user(first)
    first.close()
    again = Database(database_url)
    try:
        assert migrate(again.engine) == SCHEMA_VERSION  # nothing left to do
        with again.session() as session:
            assert session.scalars(select(User.name)).all() == ["ada"]
            assert session.scalars(select(SchemaVersion.version)).all() == [SCHEMA_VERSION]
            assert len(session.scalars(select(AuditHead)).all()) == 1
    finally:
        again.close()


def test_services_starting_together_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []
    opened: list[Database] = []

    def start() -> None:
        try:
            opened.append(Database(database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [] and len(opened) == 4
        with opened[0].session() as session:
            assert session.scalars(select(SchemaVersion.version)).all() == [SCHEMA_VERSION]
            assert len(session.scalars(select(AuditHead)).all()) == 1
    finally:
        for db in opened:
            db.close()


def test_a_version_2_database_gains_the_series_owner(database_url: str) -> None:
    """v3 adds ``dicom_series.owner_id`` to a database migrated to v2 before it existed."""
    db = Database(database_url)
    with db.write() as session:
        if database_url.startswith("sqlite"):  # SQLite cannot drop a foreign-key column
            kept = [
                c["name"]
                for c in inspect(session.connection()).get_columns("dicom_series")
                if c["name"] != "owner_id"
            ]
            session.execute(text("ALTER TABLE dicom_series RENAME TO series_v3"))
            session.execute(
                text(f"CREATE TABLE dicom_series AS SELECT {', '.join(kept)} FROM series_v3")
            )
            session.execute(text("DROP TABLE series_v3"))
        else:
            session.execute(text("ALTER TABLE dicom_series DROP COLUMN owner_id"))
        session.execute(update(SchemaVersion).values(version=2))
        session.commit()
    db.close()
    db = Database(database_url)
    with db.session() as session:
        columns = {c["name"] for c in inspect(session.connection()).get_columns("dicom_series")}
        version = session.execute(select(SchemaVersion.version)).scalar_one()
    db.close()
    assert "owner_id" in columns and version == SCHEMA_VERSION == 4


def test_newer_schema_is_refused(database_url: str) -> None:
    db = Database(database_url)
    with db.write() as session:
        session.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 1))
        session.commit()
    db.close()
    with pytest.raises(InputError, match="newer than this medsight") as caught:
        Database(database_url)
    assert "\n" not in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "",
        "mysql://u:secret@localhost/medsight",
        "postgresql://u:secret@127.0.0.1:notaport/medsight",
        "postgresql+psycopg://u:secret@127.0.0.1:{closed}/medsight",
        "sqlite:////nonexistent-medsight-dir/sub/medsight.db",
    ],
    ids=["garbage", "empty", "mysql", "bad-port", "refused", "sqlite-no-dir"],
)
def test_bad_url_is_a_one_line_input_error(url: str) -> None:
    url = url.format(closed=_closed_port())
    with pytest.raises(InputError) as caught:
        Database(url)
    message = str(caught.value)
    assert message and "\n" not in message and "secret" not in message


@pytest.mark.external
def test_wrong_password_is_an_input_error(postgres_url: str) -> None:
    url = make_url(postgres_url).set(password="wrong-secret").render_as_string(False)
    with pytest.raises(InputError, match="cannot be opened") as caught:
        Database(url)
    assert "wrong-secret" not in str(caught.value)


@pytest.fixture
def sqlite_db(sqlite_database_url: str) -> Database:
    db = Database(sqlite_database_url)
    _add_user(db)
    with db.write() as session:
        session.add(
            Job(
                id="counter",
                user_id=1,
                model_name="m",
                model_version="1",
                model_sha256="0" * 64,
                input_kind="png",
                input_sha256="0" * 64,
            )
        )
        session.commit()
    return db


def _attempts(db: Database) -> int:
    with db.session() as session:
        return session.scalars(select(Job.attempts)).one()


def test_sqlite_runs_in_wal_mode(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    sqlite_db.close()


def test_sqlite_threads_reading_then_writing_never_fail(sqlite_db: Database) -> None:
    """Each thread reads a counter and writes it back + 1: no error, no lost update."""
    threads, rounds = 12, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(rounds):
            try:
                with sqlite_db.write() as session:
                    job = session.get(Job, "counter")
                    assert job is not None
                    seen = job.attempts
                    time.sleep(0.001)  # widen the window between the read and the write
                    job.attempts = seen + 1
                    session.commit()
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == []
    assert _attempts(sqlite_db) == threads * rounds
    sqlite_db.close()


def test_sqlite_write_session_waits_for_the_writer(sqlite_db: Database) -> None:
    """A second write transaction starts only after the first commits, and sees its change."""
    second_done = threading.Event()

    def second() -> None:
        with sqlite_db.write() as session:
            job = session.get(Job, "counter")
            assert job is not None
            job.attempts += 10
            session.commit()
        second_done.set()

    with sqlite_db.write() as session:
        job = session.get(Job, "counter")
        assert job is not None
        thread = threading.Thread(target=second)
        thread.start()
        assert not second_done.wait(0.3)  # blocked behind this transaction's lock
        job.attempts += 1
        session.commit()
    thread.join(30)
    assert second_done.is_set() and _attempts(sqlite_db) == 11
    sqlite_db.close()


def test_sqlite_plain_session_read_then_write_would_fail(sqlite_db: Database) -> None:
    """Why `Database.write` exists: a deferred transaction cannot write after a newer commit."""
    with sqlite_db.session() as reader:
        job = reader.get(Job, "counter")
        assert job is not None
        with sqlite_db.write() as other:
            other.execute(update(Job).values(attempts=5))
            other.commit()
        job.attempts += 1
        with pytest.raises(OperationalError):
            reader.commit()
    assert _attempts(sqlite_db) == 5
    sqlite_db.close()


@pytest.mark.external
def test_each_postgres_test_gets_its_own_database(
    postgres_database_url: str, postgres_url: str
) -> None:
    """The fixture's promise other test files rely on: a new, empty database per test."""
    name = make_url(postgres_database_url).database
    assert name and name.startswith("t_") and name != make_url(postgres_url).database
    db = Database(postgres_database_url)  # earlier tests made these tables in their databases
    try:
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == set(Base.metadata.tables)
        with db.session() as session:
            assert session.scalars(select(User)).all() == []
    finally:
        db.close()
