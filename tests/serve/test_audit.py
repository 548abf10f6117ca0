"""The audit trail: the chain holds under concurrent appends and shows every kind of tampering."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from medsight.cli.audit import reading
from medsight.serve.store.audit import (
    AuditEvent,
    ChainCheck,
    append,
    export_records,
    record_dict,
    record_hash,
    verify_chain,
)
from medsight.serve.store.database import Database
from medsight.serve.store.schema import AuditHead, AuditRecord


def event(i: int, actor: str = "ada") -> AuditEvent:
    return AuditEvent(
        actor=actor,
        role="clinician",
        action="predict",
        outcome="ok",
        client="127.0.0.1",
        model_name="lung-ct",
        model_version="1",
        model_sha256="a" * 64,
        input_sha256="b" * 64,
        target=f"job-{i}",
    )


def append_many(db: Database, n: int, actor: str = "ada") -> None:
    """``n`` records, each in its own committed write transaction."""
    for i in range(n):
        with db.write() as session:
            append(session, event(i, actor))
            session.commit()


def check(db: Database, batch: int = 1000) -> ChainCheck:
    with db.session() as session:
        return verify_chain(session, batch)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def test_empty_chain_verifies(db: Database) -> None:
    assert check(db) == ChainCheck(0, True)


def test_chain_verifies_after_many_appends(db: Database) -> None:
    append_many(db, 20)
    with db.write() as session:  # several records in one transaction extend the chain too
        for i in range(5):
            append(session, event(100 + i))
        session.commit()
    assert check(db) == ChainCheck(25, True)
    assert check(db, batch=3) == ChainCheck(25, True)  # verified across read batches
    with db.session() as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        head = session.get(AuditHead, 1)
    assert [r.seq for r in records] == list(range(1, 26))
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
    assert head is not None and (head.seq, head.hash) == (25, records[-1].hash)


def test_a_rolled_back_append_leaves_no_trace(db: Database) -> None:
    append_many(db, 2)
    with db.write() as session:
        append(session, event(9))
        session.rollback()
    append_many(db, 1)
    assert check(db) == ChainCheck(3, True)


def test_concurrent_appends_from_threads(db: Database) -> None:
    threads, each = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(worker: int) -> None:
        barrier.wait()
        try:
            append_many(db, each, actor=f"worker{worker}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == []
    assert check(db) == ChainCheck(threads * each, True)
    with db.session() as session:
        actors = session.execute(select(AuditRecord.actor, AuditRecord.target)).all()
    assert sorted(actors) == sorted(
        (f"worker{w}", f"job-{i}") for w in range(threads) for i in range(each)
    )


def test_two_appends_in_one_transaction_while_another_waits(db: Database) -> None:
    """A transaction appending twice must not deadlock with one waiting to append."""
    first_appended = threading.Event()
    done: list[str] = []

    def two_records() -> None:
        with db.write() as session:
            append(session, event(1, "first"))
            first_appended.set()
            time.sleep(0.3)  # the other transaction is now waiting for the chain
            append(session, event(2, "first"))
            session.commit()
        done.append("first")

    def one_record() -> None:
        first_appended.wait(10)
        with db.write() as session:
            append(session, event(3, "second"))
            session.commit()
        done.append("second")

    workers = [threading.Thread(target=two_records), threading.Thread(target=one_record)]
    for worker in workers:
        worker.daemon = True  # a deadlock must fail the test, not hang the run
        worker.start()
    for worker in workers:
        worker.join(15)
    assert sorted(done) == ["first", "second"]
    assert check(db) == ChainCheck(3, True)


APPENDER = """
import sys
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import Database

url, actor, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = Database(url)
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    with db.write() as session:
        append(session, AuditEvent(actor, "service", "predict", "ok", target=f"job-{i}"))
        session.commit()
db.close()
"""


def test_concurrent_appends_from_two_processes(db: Database) -> None:
    """Two service processes (two engines) append at once; the chain stays whole."""
    each = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, db.url, f"proc{p}", str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    try:
        for proc in procs:  # both have opened the database before either appends
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert check(db) == ChainCheck(2 * each, True)
    with db.session() as session:
        actors = session.scalars(select(AuditRecord.actor)).all()
    assert sorted(actors) == ["proc0"] * each + ["proc1"] * each


def test_audit_cli_reads_one_snapshot(db: Database) -> None:
    """`medsight audit` verifies one state of the chain while the service keeps appending.

    Here rather than in tests/cli because it needs both backends: under PostgreSQL's default
    READ COMMITTED a record committed mid-check would make the head look ahead of the chain.
    """
    append_many(db, 3)
    with reading(db.url) as session:
        assert len(session.scalars(select(AuditRecord.seq)).all()) == 3
        append_many(db, 2)  # committed by "the service" meanwhile
        assert len(session.scalars(select(AuditRecord.seq)).all()) == 3
        assert verify_chain(session) == ChainCheck(3, True)
    assert check(db) == ChainCheck(5, True)


# -- tampering: each edit is one an attacker with write access to the tables could make --


def _change_field(session: Session) -> None:
    session.execute(update(AuditRecord).where(AuditRecord.seq == 5).values(actor="mallory"))


def _change_time(session: Session) -> None:
    record = session.get(AuditRecord, 5)
    assert record is not None
    record.at = record.at - dt.timedelta(hours=1)


def _change_and_rehash(session: Session) -> None:
    record = session.get(AuditRecord, 5)
    assert record is not None
    record.outcome = "denied"
    record.hash = record_hash(record.prev_hash, record_dict(record))


def _delete_middle(session: Session) -> None:
    session.execute(delete(AuditRecord).where(AuditRecord.seq == 5))


def _delete_last(session: Session) -> None:
    session.execute(delete(AuditRecord).where(AuditRecord.seq == 10))


def _delete_last_two(session: Session) -> None:
    session.execute(delete(AuditRecord).where(AuditRecord.seq >= 9))


def _swap(session: Session) -> None:
    table = AuditRecord.__table__
    for old, new in ((4, -4), (5, 4), (-4, 5)):
        session.execute(table.update().where(table.c.seq == old).values(seq=new))


def _append_past_head(session: Session) -> None:
    last = session.get(AuditRecord, 10)
    assert last is not None
    forged = AuditRecord(seq=11, at=last.at, prev_hash=last.hash, hash="", **asdict(event(11)))
    forged.hash = record_hash(last.hash, record_dict(forged))
    session.add(forged)


def _rewrite_last(session: Session) -> None:
    record = session.get(AuditRecord, 10)
    assert record is not None
    record.target = "job-other"
    record.hash = record_hash(record.prev_hash, record_dict(record))


TAMPERING: list[tuple[Callable[[Session], None], int, str]] = [
    (_change_field, 5, "record changed"),
    (_change_time, 5, "record changed"),
    (_change_and_rehash, 6, "previous hash does not match"),
    (_delete_middle, 5, "record missing"),
    (_delete_last, 10, "records removed from the end"),
    (_delete_last_two, 9, "records removed from the end"),
    (_swap, 4, "previous hash does not match"),
    (_append_past_head, 11, "record added after the head"),
    (_rewrite_last, 10, "last record does not match the head"),
]


@pytest.mark.parametrize(
    ("tamper", "first_bad_seq", "reason"),
    TAMPERING,
    ids=[t[0].__name__.strip("_") for t in TAMPERING],
)
def test_tampering_is_detected_at_the_first_bad_record(
    db: Database, tamper: Callable[[Session], None], first_bad_seq: int, reason: str
) -> None:
    append_many(db, 10)
    assert check(db).ok
    with db.write() as session:
        tamper(session)
        session.commit()
    result = check(db)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, first_bad_seq, reason)
    assert check(db, batch=3) == result


def test_export_since_filters_by_time(db: Database) -> None:
    append_many(db, 3)
    time.sleep(0.01)
    append_many(db, 3)
    with db.session() as session:
        fourth = session.get(AuditRecord, 4)
        assert fourth is not None
        since = fourth.at.astimezone(dt.UTC)
        everything = list(export_records(session))
        later = [r["seq"] for r in export_records(session, since)]
        in_tokyo = since.astimezone(dt.timezone(dt.timedelta(hours=9)))
        same_in_tokyo = [r["seq"] for r in export_records(session, in_tokyo)]
        naive_utc = [r["seq"] for r in export_records(session, since.replace(tzinfo=None))]
        after_all = list(export_records(session, since + dt.timedelta(days=1)))
    assert [r["seq"] for r in everything] == [1, 2, 3, 4, 5, 6]
    assert later == same_in_tokyo == naive_utc == [4, 5, 6]
    assert after_all == []
    for record in everything:  # a recipient can re-check every exported line on its own
        fields = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
        assert record_hash(record["prev_hash"], fields) == record["hash"]
        assert record["at"].endswith("+00:00")
