"""The service's tables (SQLAlchemy 2 declarative): users, tokens, sessions, jobs, audit.

Times are timezone-aware UTC. Secrets are never stored: API tokens and passwords as argon2
hashes, session ids as SHA-256 (a session id is a 256-bit random value, so a fast hash is
enough to make a stolen table useless). Nothing here holds patient identifiers: jobs point at
de-identified files and keep the SHA-256 of the de-identified input.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "clinician", "service")
JOB_STATES = ("queued", "running", "done", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class SchemaVersion(Base):
    """One row: the schema version the database was migrated to."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API token: ``ms_<public id>_<secret>``; the id finds the row, argon2 checks the secret."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    secret_hash: Mapped[str] = mapped_column(String(256))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginSession(Base):
    """A viewer session (cookie) with its CSRF token."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Job(Base):
    """A prediction: queued, run by a worker under a lease, its result kept as JSON + files.

    A worker that claims a job stamps a fresh ``lease_token``, its ``worker_id`` and
    ``heartbeat_at``, and keeps the heartbeat fresh while it works; only the holder of the
    current lease can finish the job (`jobs.queue`).
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    input_kind: Mapped[str] = mapped_column(String(32))
    input_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AuditHead(Base):
    """One row: the last audit record's sequence number and hash (locked to append)."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditRecord(Base):
    """One audited event; ``hash`` = SHA-256 of the previous hash and this record's fields."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(64), default="")
    model_version: Mapped[str] = mapped_column(String(64), default="")
    model_sha256: Mapped[str] = mapped_column(String(64), default="")
    input_sha256: Mapped[str] = mapped_column(String(64), default="")
    target: Mapped[str] = mapped_column(String(128), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DicomSeries(Base):
    """A series arriving over DICOM: its de-identified instances are stored as they come.

    ``reidentification`` is the encrypted record (`reidentification.py`) that lets results
    go back to the PACS under the original patient and study; it is erased once the
    results are delivered. ``display`` holds, encrypted the same way, the few labels a
    clinician needs to recognise the study in the viewer (name, id, dates, descriptions).
    ``series_key`` is the de-identified SeriesInstanceUID.
    """

    __tablename__ = "dicom_series"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_key: Mapped[str] = mapped_column(String(64), unique=True)
    calling_ae: Mapped[str] = mapped_column(String(16))
    client: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="receiving", index=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    instances: Mapped[int] = mapped_column(Integer, default=0)
    first_received: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_received: Mapped[dt.datetime] = mapped_column(default=utcnow)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: the user a series sent over DICOMweb belongs to (None: the node's service account)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reidentification: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: encrypted patient/study/series labels for the viewer's worklist (`display_record`)
    display: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class Delivery(Base):
    """Results of a job to send to a DICOM destination, retried with backoff until sent."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("dicom_series.id"))
    destination: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    #: the node that is sending it now (`dicom.sender`): set with ``next_attempt`` pushed
    #: past the send, so no other node sends it meanwhile
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
