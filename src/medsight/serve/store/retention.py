"""Retention: forget old studies' data and identities, keep the audit trail and the answers.

`purge` applies one retention period ``older_than`` (cutoff = now - ``older_than``) to what
`medsight serve` keeps:

- **Jobs** finished (done or failed) before the cutoff, unless a delivery of their results
  to the PACS is still waiting: their de-identified input (``DATA/uploads/JOB``) and, unless
  ``keep_results``, their result files (``DATA/results/JOB``) are deleted. The row stays
  (audit records and deliveries name the job); its result becomes a `tombstone`: the
  answer (predicted class and probabilities, or each structure's volume and component
  count), the model, ``"purged": true``, ``"purged_at"`` and no files. With ``keep_results``
  the result is kept whole, marked ``"input_purged": true``; a later purge without it
  tombstones it. Queued and running jobs are never touched.
- **DICOM series** last received before the cutoff whose job (if any) is purged as above:
  the encrypted identified data (``display``: the viewer's patient labels;
  ``reidentification``) is erased. A series still ``receiving`` that went quiet before the
  cutoff is marked ``expired`` (the node refuses further instances of it) and erased too.
- **Login sessions and API tokens** that expired before the cutoff, or were revoked and
  created before it, are deleted (the table has no revocation time). Users stay.
- **Leftover folders** nothing needs: ``DATA/incoming/SERIES`` of a series no longer
  receiving, and, once modified before the cutoff, folders named like a job id
  (``uploads/``, ``results/``) or a series UID (``incoming/``) that the database does not
  know (an upload or a first instance whose commit failed).

Audit records are never changed or deleted: the run appends one ``purge`` record (actor
``host-cli``; its target counts what went, as ``worklist_view`` counts its items, since
``outcome`` holds 32 characters and the counts may not fit).

Order, and why a failure loses nothing the database still needs: the row changes and the
audit record are one transaction; folders are deleted only after it commits. The folders to
delete are derived each run from the database and what is on disk (a purged job's folder
that still exists is deleted again), so a deletion that fails is reported and retried by the
next run, and running `purge` twice changes nothing the second time but adds its record.

In-flight data (a series being received, an upload not yet committed as a job) is never
taken for stale: it must also be older than `IN_FLIGHT_GRACE`, whatever ``older_than`` is.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from medsight.errors import InputError
from medsight.serve.api.errors import ApiError
from medsight.serve.auth.users import HOST_CLI
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import Database
from medsight.serve.store.schema import ApiToken, Delivery, DicomSeries, Job, LoginSession, utcnow

FINISHED = ("done", "failed")
#: a series or folder younger than this may still be being written, whatever the cutoff
IN_FLIGHT_GRACE = dt.timedelta(hours=1)
#: result fields a tombstone keeps: the answer and the model, nothing about the pictures
KEPT_FIELDS = ("task", "predicted", "probabilities", "conformal_set", "refer", "model", "seconds")
#: per-structure fields a segmentation tombstone keeps (component places and sizes go)
KEPT_STRUCTURE_FIELDS = ("volume_ml", "n_components")
#: a de-identified SeriesInstanceUID (``2.25.<decimal>``), the name of an incoming folder
SERIES_KEY = re.compile(r"[0-9]+(\.[0-9]+)*")
IN_CHUNK = 500


@dataclass
class PurgeReport:
    """What a purge run changed (or, for a dry run, would change).

    Attributes:
        cutoff: data finished or last received before this time was purged.
        dry_run: nothing was changed.
        jobs: job rows whose result was tombstoned (or marked ``input_purged``).
        series: DICOM series rows whose identified data was erased (``expired`` included).
        expired: of ``series``, those still ``receiving`` that were marked ``expired``.
        sessions: login session rows deleted.
        tokens: API token rows deleted.
        folders: folders (and stray files) to delete under the data folder.
        failed: those of ``folders`` that could not be deleted, with why; the next run
            retries them.
        bytes_freed: bytes of the folders deleted (for a dry run: that would be).
        audit_seq: sequence number of the run's audit record (None for a dry run).
    """

    cutoff: dt.datetime
    dry_run: bool
    jobs: int = 0
    series: int = 0
    expired: int = 0
    sessions: int = 0
    tokens: int = 0
    folders: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    bytes_freed: int = 0
    audit_seq: int | None = None

    def summary(self, older_than: dt.timedelta) -> str:
        """One line of counts (the audit record's target, at most 128 characters)."""
        days = older_than / dt.timedelta(days=1)
        return (
            f"older_than={days:g}d jobs={self.jobs} series={self.series} "
            f"sessions={self.sessions} tokens={self.tokens} folders={len(self.folders)}"
        )[:128]


def tombstone(result: dict[str, Any] | None, purged_at: dt.datetime) -> dict[str, Any]:
    """What a purged job's result keeps: the answer, not the files or where things were.

    Kept: ``task``, ``predicted``, ``probabilities``, ``conformal_set``, ``refer``,
    ``model`` and ``seconds`` where present, and for a segmentation each structure's
    ``volume_ml`` and ``n_components`` (its components' sizes, centroids in patient
    coordinates, slices and sides go with the images they point into). Anything else,
    including fields a later medsight may add, is dropped. ``files`` becomes empty, so no
    link to a deleted file is offered.

    Args:
        result: the job's result (None for a failed job).
        purged_at: when it was purged (UTC).

    Returns:
        The tombstone, JSON-ready, with ``"purged": true`` and ``purged_at`` (ISO 8601).
    """
    source = result if isinstance(result, dict) else {}
    kept: dict[str, Any] = {k: source[k] for k in KEPT_FIELDS if k in source}
    structures = source.get("structures")
    if isinstance(structures, dict):
        kept["structures"] = {
            name: {k: s[k] for k in KEPT_STRUCTURE_FIELDS if k in s}
            for name, s in structures.items()
            if isinstance(s, dict)
        }
    return {**kept, "files": [], "purged": True, "purged_at": _iso(purged_at)}


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _marked(
    result: dict[str, Any] | None, keep_results: bool, at: dt.datetime
) -> dict[str, Any] | None:
    """The purged job's new result, or None when it is already marked as purged."""
    current = result if isinstance(result, dict) else {}
    if current.get("purged"):
        return None
    if keep_results:
        if current.get("input_purged"):
            return None
        return {**current, "input_purged": True, "purged_at": _iso(at)}
    return tombstone(result, at)


def _is_job_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _by_owner(root: Path, temp_names: bool) -> dict[str, list[Path]]:
    """Entries of ``root`` by the id they belong to (``ID``; ``.ID.*`` atomic-write leftovers)."""
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for path in root.iterdir():
        name = path.name
        if name.startswith("."):
            if not temp_names:
                continue
            name = name[1:].split(".", 1)[0]
        found.setdefault(name, []).append(path)
    return found


def _older(paths: Iterable[Path], stale: dt.datetime) -> bool:
    """Whether every path was last modified before ``stale`` (a vanished one counts as old)."""
    limit = stale.timestamp()
    for path in paths:
        try:
            if path.lstat().st_mtime >= limit:
                return False
        except FileNotFoundError:
            continue
    return True


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def _known(session: Session, column: Any, names: list[str]) -> set[str]:
    """Those of ``names`` that ``column`` holds."""
    known: set[str] = set()
    for chunk in _chunks(names):
        known.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return known


def _size(path: Path) -> int:
    """Bytes of the files under ``path`` (links counted as themselves, not followed)."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
    except FileNotFoundError:
        return 0
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def _remove(path: Path) -> None:
    """Delete ``path`` (a folder with its contents, or a file or link); gone already is fine.

    Raises:
        OSError: it could not be deleted.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _waiting_delivery_of_job() -> ColumnElement[bool]:
    return exists().where(Delivery.job_id == Job.id, Delivery.state == "waiting")


def purge(
    db: Database,
    data_dir: Path,
    older_than: dt.timedelta,
    dry_run: bool = False,
    keep_results: bool = False,
    now: dt.datetime | None = None,
) -> PurgeReport:
    """Apply the retention period ``older_than`` to the service's database and data folder.

    See the module docstring for what goes and what stays.

    Args:
        db: the service database.
        data_dir: the service's data folder (``uploads/``, ``results/``, ``incoming/``).
        older_than: the retention period.
        dry_run: change nothing; report what would go.
        keep_results: keep result folders and results whole (inputs still go).
        now: the current time (UTC; tests pass one).

    Returns:
        What was (or would be) purged; folders that could not be deleted are in ``failed``.

    Raises:
        InputError: ``older_than`` is negative, ``data_dir`` is not a folder (a mistyped
            path would purge the rows and leave the files), or the purge could not be
            committed with its audit record (then nothing was purged).
    """
    if older_than < dt.timedelta(0):
        raise InputError(f"older than {older_than}: the retention period cannot be negative")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such data folder; give the service's data folder")
    now = now or utcnow()
    cutoff = now - older_than
    stale = min(cutoff, now - IN_FLIGHT_GRACE)
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    # listed before the transaction, which on SQLite holds the service's write lock
    uploads = _by_owner(data_dir / "uploads", temp_names=True)
    results = {} if keep_results else _by_owner(data_dir / "results", temp_names=True)
    incoming = _by_owner(data_dir / "incoming", temp_names=False)

    apply = not dry_run
    with db.write() if apply else db.session() as session:
        purged_jobs, report.jobs = _mark_jobs(session, cutoff, keep_results, now, apply)
        report.series, expired_keys = _erase_series(session, cutoff, stale, apply)
        report.expired = len(expired_keys)
        report.sessions = _delete_ended(session, LoginSession, cutoff, apply)
        report.tokens = _delete_ended(session, ApiToken, cutoff, apply)
        report.folders = _folders(
            session, uploads, results, incoming, purged_jobs, expired_keys, stale
        )
        if apply:
            _commit(session, report, older_than)

    for path in report.folders:
        size = _size(path)
        if dry_run:
            report.bytes_freed += size
            continue
        try:
            _remove(path)
        except OSError as exc:
            report.failed.append((path, exc.strerror or type(exc).__name__))
            continue
        report.bytes_freed += size
    return report


def _mark_jobs(
    session: Session, cutoff: dt.datetime, keep_results: bool, now: dt.datetime, apply: bool
) -> tuple[set[str], int]:
    """Tombstone (or mark) the results of the jobs to purge.

    Returns:
        The ids of every job to purge (marked now or before, whose folders go), and how
        many were marked now.
    """
    purged: set[str] = set()
    marked_now = 0
    query = select(Job).where(
        Job.state.in_(FINISHED), Job.finished < cutoff, ~_waiting_delivery_of_job()
    )
    for job in session.execute(query).scalars():
        purged.add(job.id)
        marked = _marked(job.result, keep_results, now)
        if marked is not None:
            marked_now += 1
            if apply:
                job.result = marked
    return purged, marked_now


def _erase_series(
    session: Session, cutoff: dt.datetime, stale: dt.datetime, apply: bool
) -> tuple[int, set[str]]:
    """Erase the identified data of old series; mark stale receiving ones ``expired``.

    Returns:
        How many series rows were erased, and the keys of those marked expired.
    """
    waiting = exists().where(Delivery.series_id == DicomSeries.id, Delivery.state == "waiting")
    query = (
        select(DicomSeries)
        .outerjoin(Job, Job.id == DicomSeries.job_id)
        .where(
            DicomSeries.last_received < cutoff,
            or_(DicomSeries.state != "receiving", DicomSeries.last_received < stale),
            # its job (if any) is purged too: the viewer shows labels as long as the result
            or_(Job.id.is_(None), and_(Job.state.in_(FINISHED), Job.finished < cutoff)),
            or_(Job.id.is_(None), ~_waiting_delivery_of_job()),
            ~waiting,
            or_(
                DicomSeries.display.is_not(None),
                DicomSeries.reidentification.is_not(None),
                DicomSeries.state == "receiving",
            ),
        )
    )
    if apply:  # the DICOM node locks the rows it changes the same way
        query = query.with_for_update(of=DicomSeries)
    rows = session.execute(query).scalars().all()
    expired = {row.series_key for row in rows if row.state == "receiving"}
    if apply:
        for row in rows:
            row.display, row.reidentification = None, None
            if row.state == "receiving":
                row.state = "expired"
    return len(rows), expired


def _delete_ended(
    session: Session, model: type[ApiToken] | type[LoginSession], cutoff: dt.datetime, apply: bool
) -> int:
    """Delete the rows of ``model`` that ended before the cutoff; returns how many.

    Ended: expired before the cutoff, or revoked and created before it (the table keeps no
    revocation time).
    """
    ended = or_(model.expires < cutoff, and_(model.revoked, model.created < cutoff))
    count = int(session.execute(select(func.count()).select_from(model).where(ended)).scalar_one())
    if apply and count:
        session.execute(delete(model).where(ended).execution_options(synchronize_session=False))
    return count


def _folders(
    session: Session,
    uploads: dict[str, list[Path]],
    results: dict[str, list[Path]],
    incoming: dict[str, list[Path]],
    purged_jobs: set[str],
    expired_series: set[str],
    stale: dt.datetime,
) -> list[Path]:
    """The entries to delete: purged jobs' folders, leftovers and orphans (see module doc)."""
    chosen: list[Path] = []
    orphan_jobs: dict[str, list[Path]] = {}
    for entries in (uploads, results):
        for name, paths in entries.items():
            if name in purged_jobs:
                chosen += paths
            elif _is_job_id(name) and _older(paths, stale):
                orphan_jobs.setdefault(name, []).extend(paths)
    known_jobs = _known(session, Job.id, sorted(orphan_jobs))
    for name, paths in orphan_jobs.items():
        if name not in known_jobs:
            chosen += paths

    keys = sorted(name for name in incoming if len(name) <= 64)
    states: dict[str, str] = {}
    for chunk in _chunks(keys):
        query = select(DicomSeries.series_key, DicomSeries.state).where(
            DicomSeries.series_key.in_(chunk)
        )
        states.update((key, state) for key, state in session.execute(query))
    for name in keys:
        if name not in states:  # no row: a first instance whose commit failed, or in flight
            if SERIES_KEY.fullmatch(name) and _older(incoming[name], stale):
                chosen += incoming[name]
        elif states[name] != "receiving" or name in expired_series:
            chosen += incoming[name]
    return sorted(chosen)


def _commit(session: Session, report: PurgeReport, older_than: dt.timedelta) -> None:
    """Append the run's audit record and commit it with the row changes.

    Raises:
        InputError: the audit record or the changes could not be written (rolled back).
    """
    try:
        record = append(
            session,
            AuditEvent(
                actor=HOST_CLI.name,
                role=HOST_CLI.role,
                action="purge",
                outcome="ok",
                target=report.summary(older_than),
            ),
        )
        session.commit()
    except (ApiError, SQLAlchemyError):
        session.rollback()
        raise InputError(
            "the purge could not be written with its audit record; nothing was purged"
        ) from None
    report.audit_seq = record.seq
