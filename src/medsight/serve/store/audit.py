"""The audit trail: one hash-chained record per audited event, appended in the caller's transaction.

Each record's ``hash`` is SHA-256 over the previous record's hash and this record's fields
(canonical JSON), so changing, deleting or reordering a record breaks every hash after it;
`verify_chain` recomputes them. Appending locks the single ``audit_head`` row (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite a write session holds the database's write lock from its
start), so concurrent requests extend the chain one at a time. There is deliberately no
process lock as well: a thread waiting for the database lock while holding it would block the
lock's owner from appending a second record in its transaction, a deadlock PostgreSQL cannot see.

`append` adds the record to the caller's session: the caller commits it together with the
change it describes, before the response is sent. If that commit fails, the request fails
(the service answers 503 ``audit_unavailable``): nothing happens without its record.

What a record holds: who (user name, or ``anonymous``), role, when (UTC), action, model name/
version/SHA-256, SHA-256 of the de-identified input, outcome, client address and a target (a
job id, a user name). Never patient data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from medsight.serve.api.errors import ApiError
from medsight.serve.store.database import GENESIS_HASH
from medsight.serve.store.schema import AuditHead, AuditRecord, Job, utcnow

FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "client",
    "model_name",
    "model_version",
    "model_sha256",
    "input_sha256",
    "target",
)


@dataclass(frozen=True)
class AuditEvent:
    """What happened; `append` adds the sequence number, time and hashes."""

    actor: str
    role: str
    action: str
    outcome: str
    client: str = ""
    model_name: str = ""
    model_version: str = ""
    model_sha256: str = ""
    input_sha256: str = ""
    target: str = ""


def job_fields(job: Job) -> dict[str, str]:
    """The model and input fields of an event about ``job``."""
    return {
        "model_name": job.model_name,
        "model_version": job.model_version,
        "model_sha256": job.model_sha256,
        "input_sha256": job.input_sha256,
    }


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def record_dict(record: AuditRecord) -> dict[str, Any]:
    """The hashed fields of ``record`` as JSON-ready data (time as ISO 8601 UTC)."""
    data = {name: getattr(record, name) for name in FIELDS}
    data["at"] = _iso(record.at)
    return data


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 of the previous hash and the canonical JSON of ``fields``."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def append(session: Session, event: AuditEvent) -> AuditRecord:
    """Add ``event`` to the chain inside ``session``'s transaction (the caller commits).

    ``session`` must be a write session (`Database.write`): on SQLite it holds the write
    lock from its start, on PostgreSQL the head row is locked here until the commit; either
    way no other transaction can extend the chain from the same head.

    Raises:
        ApiError: ``audit_unavailable`` when the record cannot be written (the session is
            rolled back, so the change it describes is dropped too).
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    record = AuditRecord(
        seq=head.seq + 1,
        at=utcnow(),
        prev_hash=head.hash,
        hash="",
        **asdict(event),
    )
    record.hash = record_hash(head.hash, record_dict(record))
    head.seq, head.hash = record.seq, record.hash
    session.add(record)
    try:
        session.flush()
    except SQLAlchemyError:
        session.rollback()
        raise ApiError(
            "audit_unavailable", "the audit trail cannot be written; nothing was done"
        ) from None
    return record


def commit_audited(session: Session) -> None:
    """Commit ``session`` (a change and its audit record); a failure becomes a 503.

    Raises:
        ApiError: ``audit_unavailable``: the record could not be written, so the change it
            describes did not happen either.
    """
    try:
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        raise ApiError(
            "audit_unavailable", "the audit trail cannot be written; nothing was done"
        ) from None


@dataclass(frozen=True)
class ChainCheck:
    """The result of `verify_chain`."""

    records: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(session: Session, batch: int = 1000) -> ChainCheck:
    """Recompute every record's hash, and check sequence numbers and the head row.

    ``session`` should read one snapshot (SQLite does; on PostgreSQL use REPEATABLE READ):
    under READ COMMITTED a record appended while the batches are read would make the head
    look ahead of the chain.
    """
    prev, expected_seq, count = GENESIS_HASH, 1, 0
    last_seq = 0
    while True:
        rows = (
            session.execute(
                select(AuditRecord)
                .where(AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for record in rows:
            if record.seq != expected_seq:
                return ChainCheck(count, False, expected_seq, "record missing")
            if record.prev_hash != prev:
                return ChainCheck(count, False, record.seq, "previous hash does not match")
            if record_hash(prev, record_dict(record)) != record.hash:
                return ChainCheck(count, False, record.seq, "record changed")
            prev, expected_seq, count = record.hash, expected_seq + 1, count + 1
            last_seq = record.seq
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq > count:
        return ChainCheck(count, False, count + 1, "records removed from the end")
    if head.seq < count:
        return ChainCheck(count, False, head.seq + 1, "record added after the head")
    if head.hash != prev:  # the last record was rewritten with a self-consistent hash
        return ChainCheck(count, False, count, "last record does not match the head")
    return ChainCheck(count, True)


def export_records(session: Session, since: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every record (from ``since``, UTC) in order, as JSON-ready dicts with their hashes."""
    query = select(AuditRecord).order_by(AuditRecord.seq)
    if since is not None:
        # SQLite compares the stored UTC text, and PostgreSQL reads a naive time in the
        # session's zone, so both need an aware UTC time
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        query = query.where(AuditRecord.at >= since.astimezone(dt.UTC))
    for record in session.execute(query.execution_options(yield_per=500)).scalars():
        yield {**record_dict(record), "prev_hash": record.prev_hash, "hash": record.hash}
