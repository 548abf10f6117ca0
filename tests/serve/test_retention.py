"""Retention (`serve.store.retention.purge`): old data goes, answers and the audit trail stay.

The main test runs real jobs through the service on SQLite and PostgreSQL, ages some of them
in the database, and checks what a purge (dry, real, repeated) leaves on disk, in the rows
and in the audit trail. The smaller tests build rows directly to check one rule each.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_kit import Service, ct_series_bytes, png_bytes, running_service, upload, wait_for_job
from sqlalchemy import func, select, update

from medsight.errors import InputError
from medsight.serve.api.errors import ApiError
from medsight.serve.jobs.worker import input_path, result_dir
from medsight.serve.store import retention
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import record_key, seal
from medsight.serve.store.retention import PurgeReport, purge, tombstone
from medsight.serve.store.schema import (
    ApiToken,
    AuditRecord,
    Delivery,
    DicomSeries,
    Job,
    LoginSession,
    User,
    utcnow,
)

PERIOD = dt.timedelta(days=30)
OLD = dt.timedelta(days=40)
LABELS = {"PatientName": "Doe^Jane", "PatientID": "PID-0042", "SeriesDescription": "CT chest"}


# ---------------------------------------------------------------- helpers


def submit(service: Service, model: str, files: list) -> str:
    header = service.tokens.header("clinician")
    r = service.client.post(f"/v1/predict/{model}", files=files, headers=header)
    assert r.status_code in (200, 202), r.text
    job = wait_for_job(service.client, r.json()["job_id"], header)
    assert job["state"] == "done", job
    return str(job["job_id"])


def age_job(db: Database, job_id: str, by: dt.timedelta, **values: Any) -> None:
    when = utcnow() - by
    with db.write() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created=when, started=when, finished=when, **values)
        )
        session.commit()


def add_series(
    db: Database,
    key: str,
    state: str,
    age: dt.timedelta,
    job_id: str | None = None,
    delivery: str | None = None,
) -> int:
    """A DICOM-node series row with sealed labels and record, last received ``age`` ago."""
    sealed = seal(LABELS, record_key("k"))
    when = utcnow() - age
    with db.write() as session:
        row = DicomSeries(
            series_key=key,
            calling_ae="CT_SCANNER",
            state=state,
            modality="CT",
            instances=3,
            first_received=when,
            last_received=when,
            job_id=job_id,
            display=sealed,
            reidentification=sealed,
        )
        session.add(row)
        session.flush()
        if delivery is not None:
            assert job_id is not None
            session.add(
                Delivery(job_id=job_id, series_id=row.id, destination="PACS", state=delivery)
            )
        session.commit()
        return row.id


def make_folder(path: Path, age: dt.timedelta | None = None, size: int = 1000) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "1.dcm").write_bytes(b"x" * size)
    if age is not None:
        when = (utcnow() - age).timestamp()
        os.utime(path, (when, when))
    return path


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def snapshot(db: Database) -> dict[str, Any]:
    """Every row purge may change, as plain values."""
    with db.session() as session:
        return {
            "jobs": {j.id: (j.state, j.result, j.error_code) for j in session.scalars(select(Job))},
            "series": {
                s.series_key: (s.state, s.display, s.reidentification)
                for s in session.scalars(select(DicomSeries))
            },
            "sessions": sorted(session.scalars(select(LoginSession.session_hash))),
            "tokens": sorted(session.scalars(select(ApiToken.public_id))),
            "audit": session.execute(select(func.count()).select_from(AuditRecord)).scalar_one(),
        }


def counts(report: PurgeReport) -> tuple[int, ...]:
    """(jobs, series, expired, sessions, tokens, folders)"""
    r = report
    return (r.jobs, r.series, r.expired, r.sessions, r.tokens, len(r.folders))


def purge_records(db: Database) -> list[AuditRecord]:
    with db.session() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == "purge")))


def chain_ok(db: Database) -> bool:
    with db.session() as session:
        return verify_chain(session).ok


def add_login(
    db: Database, user: str, created: dt.timedelta, expires: dt.timedelta, revoked: bool
) -> None:
    """A login session and an API token of ``user``, made ``created`` ago, ending in ``expires``."""
    now = utcnow()
    with db.write() as session:
        user_id = session.scalars(select(User.id).where(User.name == user)).one()
        session.add(
            LoginSession(
                session_hash=uuid.uuid4().hex,
                csrf_token="c",
                user_id=user_id,
                created=now - created,
                expires=now + expires,
                revoked=revoked,
            )
        )
        session.add(
            ApiToken(
                public_id=uuid.uuid4().hex,
                user_id=user_id,
                secret_hash="h",
                created=now - created,
                expires=now + expires,
                revoked=revoked,
            )
        )
        session.commit()


# ---------------------------------------------------------------- the service end to end


def test_purge_old_studies_keeps_recent_active_and_undelivered(
    tmp_path: Path, database_url: str
) -> None:
    with running_service(tmp_path, database_url) as s:
        data, db = s.settings.data_dir, s.db
        jobs = {
            "old_png": submit(s, "cls2d", upload([png_bytes(seed=0)])),
            "old_seg": submit(s, "seg3d", upload(ct_series_bytes(tmp_path))),
            "recent": submit(s, "cls2d", upload([png_bytes(seed=1)])),
            "waiting": submit(s, "cls2d", upload([png_bytes(seed=2)])),
            "running": submit(s, "cls2d", upload([png_bytes(seed=3)])),
            "failed": submit(s, "cls2d", upload([png_bytes(seed=4)])),
        }
        for name in ("old_png", "old_seg", "waiting"):
            age_job(db, jobs[name], OLD)
        # a job still running (say, re-queued after a crash) is never purged, however old
        age_job(db, jobs["running"], OLD, state="running")
        age_job(db, jobs["failed"], OLD, state="failed", result=None, error_code="internal")
        add_series(db, "2.25.1", "queued", OLD, jobs["old_seg"], delivery="sent")
        add_series(db, "2.25.2", "queued", OLD, jobs["waiting"], delivery="waiting")
        add_series(db, "2.25.3", "queued", dt.timedelta(days=1), jobs["recent"])
        add_series(db, "2.25.4", "receiving", OLD)  # the sender went silent long ago
        add_series(db, "2.25.5", "receiving", dt.timedelta(minutes=1))
        make_folder(data / "incoming" / "2.25.1")  # left over by a series now queued
        make_folder(data / "incoming" / "2.25.4")
        make_folder(data / "incoming" / "2.25.5")
        make_folder(data / "incoming" / "2.25.6", age=OLD)  # no row: an aborted first instance
        make_folder(data / "incoming" / "2.25.7")  # no row, but may be in flight
        orphan = str(uuid.uuid4())
        make_folder(data / "uploads" / orphan, age=OLD)  # an upload never committed as a job
        add_login(
            s.db, "clinician", created=OLD, expires=-OLD + dt.timedelta(days=1), revoked=False
        )
        add_login(s.db, "clinician", created=OLD, expires=dt.timedelta(days=1), revoked=True)
        add_login(
            s.db, "clinician", created=dt.timedelta(0), expires=dt.timedelta(days=1), revoked=True
        )

        gone = {
            *(
                f"{root}/{jobs[n]}"
                for root in ("uploads", "results")
                for n in ("old_png", "old_seg", "failed")
            ),
            "incoming/2.25.1",
            "incoming/2.25.4",
            "incoming/2.25.6",
            f"uploads/{orphan}",
        }
        before_rows, before_files = snapshot(db), files_under(data)
        # the dry run says what would go and changes nothing
        dry = purge(db, data, PERIOD, dry_run=True)
        assert counts(dry) == (3, 2, 1, 2, 2, len(gone))
        assert {p.relative_to(data).as_posix() for p in dry.folders} == gone
        assert dry.bytes_freed > 4000 and dry.audit_seq is None and dry.failed == []
        assert snapshot(db) == before_rows and files_under(data) == before_files

        report = purge(db, data, PERIOD)
        assert counts(report) == counts(dry)
        assert report.folders == dry.folders and report.failed == []
        assert report.bytes_freed == dry.bytes_freed
        for path in gone:
            assert not (data / path).exists(), path
        kept = {f for f in before_files if not any(f == g or f.startswith(g + "/") for g in gone)}
        assert files_under(data) == kept
        for name in ("recent", "waiting", "running"):
            assert input_path(data, jobs[name], "png").is_file()
        assert (data / "incoming" / "2.25.5" / "1.dcm").is_file()
        assert (data / "incoming" / "2.25.7" / "1.dcm").is_file()

        after = snapshot(db)
        old_png = before_rows["jobs"][jobs["old_png"]][1]
        old_seg = before_rows["jobs"][jobs["old_seg"]][1]
        png_now = after["jobs"][jobs["old_png"]][1]
        assert png_now["purged"] is True and png_now["files"] == []
        assert png_now["predicted"] == old_png["predicted"]
        assert png_now["probabilities"] == old_png["probabilities"]
        assert png_now["model"] == old_png["model"]
        seg_now = after["jobs"][jobs["old_seg"]][1]
        assert set(seg_now["structures"]) == {"lung", "nodule"}
        for name, measured in old_seg["structures"].items():
            assert seg_now["structures"][name] == {
                "volume_ml": measured["volume_ml"],
                "n_components": measured["n_components"],
            }
        assert after["jobs"][jobs["failed"]] == (
            "failed",
            {"files": [], "purged": True, "purged_at": png_now["purged_at"]},
            "internal",
        )
        for name in ("recent", "waiting", "running"):
            assert after["jobs"][jobs[name]] == before_rows["jobs"][jobs[name]], name
        series = after["series"]
        assert series["2.25.1"] == ("queued", None, None)
        assert series["2.25.4"] == ("expired", None, None)
        for key in ("2.25.2", "2.25.3", "2.25.5"):
            assert series[key] == before_rows["series"][key], key
        assert len(after["sessions"]) == 1  # the recent one, though revoked
        assert len(after["tokens"]) == len(before_rows["tokens"]) - 2

        # one audit record, chained, naming the counts; nothing else in the trail changed
        assert after["audit"] == before_rows["audit"] + 1
        (record,) = purge_records(db)
        assert (record.actor, record.role, record.outcome) == ("host-cli", "host", "ok")
        assert record.seq == report.audit_seq
        assert record.target == report.summary(PERIOD)
        assert record.target == "older_than=30d jobs=3 series=2 sessions=2 tokens=2 folders=10"
        assert chain_ok(db)

        # the service shows the tombstone, without links, and the users' tokens still work
        header = s.tokens.header("clinician")
        body = s.client.get(f"/v1/jobs/{jobs['old_png']}", headers=header).json()
        assert body["result"]["purged"] is True and body["result"]["links"] == {}
        assert s.client.get(f"/v1/jobs/{jobs['recent']}", headers=header).status_code == 200

        # a second run finds nothing left, and says so in its own record
        settled = snapshot(db)
        again = purge(db, data, PERIOD)
        assert counts(again) == (0, 0, 0, 0, 0, 0) and again.failed == []
        assert again.bytes_freed == 0
        final = snapshot(db)
        assert final.pop("audit") == settled.pop("audit") + 1 and final == settled
        records = purge_records(db)
        assert len(records) == 2 and chain_ok(db)
        assert records[-1].target.endswith("jobs=0 series=0 sessions=0 tokens=0 folders=0")


# ---------------------------------------------------------------- one rule each (SQLite)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'medsight.db'}")
    with database.write() as session:
        session.add(User(name="ada", role="clinician"))
        session.commit()
    yield database
    database.close()


def add_job(
    db: Database,
    data: Path,
    finished_ago: dt.timedelta | None,
    state: str = "done",
    result: dict[str, Any] | None = None,
) -> str:
    """A job row with an input and a result folder on disk."""
    job_id = str(uuid.uuid4())
    now = utcnow()
    with db.write() as session:
        user_id = session.scalars(select(User.id)).first()
        assert user_id is not None
        session.add(
            Job(
                id=job_id,
                user_id=user_id,
                model_name="m",
                model_version="1",
                model_sha256="0" * 64,
                input_kind="png",
                input_sha256="0" * 64,
                state=state,
                created=now - (finished_ago or dt.timedelta(0)),
                finished=None if finished_ago is None else now - finished_ago,
                result=result,
            )
        )
        session.commit()
    make_folder(data / "uploads" / job_id)
    make_folder(result_dir(data, job_id))
    return job_id


def job_result(db: Database, job_id: str) -> dict[str, Any] | None:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.result


CLASSIFIED = {
    "task": "classify",
    "predicted": "benign",
    "probabilities": {"normal": 0.2, "benign": 0.7, "malignant": 0.1},
    "conformal_set": ["benign"],
    "refer": False,
    "files": ["heatmap/heatmap.nii.gz"],
    "model": {"name": "cls3d", "version": "1", "sha256": "a" * 64},
    "seconds": 1.5,
}


def test_tombstone_keeps_the_answer_not_the_files_or_places() -> None:
    at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    assert tombstone({**CLASSIFIED, "future_field": "x"}, at) == {
        **{k: v for k, v in CLASSIFIED.items() if k != "files"},
        "files": [],
        "purged": True,
        "purged_at": "2026-03-01T08:00:00+00:00",
    }
    piece = {"volume_ml": 1.2, "centroid_lps_mm": [1.0, 2.0, 3.0], "slice": 4, "side": "left"}
    segmented = {
        "task": "segment",
        "structures": {"nodule": {"volume_ml": 1.2, "n_components": 1, "components": [piece]}},
        "files": ["segmentation/segmentation.nii.gz"],
        "model": {"name": "seg3d"},
        "seconds": 2.0,
    }
    assert tombstone(segmented, at) == {
        "task": "segment",
        "structures": {"nodule": {"volume_ml": 1.2, "n_components": 1}},
        "model": {"name": "seg3d"},
        "seconds": 2.0,
        "files": [],
        "purged": True,
        "purged_at": "2026-03-01T08:00:00+00:00",
    }
    assert tombstone(None, at) == {
        "files": [],
        "purged": True,
        "purged_at": "2026-03-01T08:00:00+00:00",
    }


def test_a_folder_that_cannot_be_deleted_is_reported_and_retried(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    job_id = add_job(db, data, OLD, result=CLASSIFIED)
    stuck = result_dir(data, job_id)
    real_rmtree = retention.shutil.rmtree

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path) == stuck:
            raise PermissionError(13, "Permission denied")
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(retention.shutil, "rmtree", rmtree)
    first = purge(db, data, PERIOD)
    assert first.jobs == 1 and first.failed == [(stuck, "Permission denied")]
    assert not (data / "uploads" / job_id).exists() and stuck.is_dir()
    assert (job_result(db, job_id) or {}).get("purged") is True  # committed before deleting

    monkeypatch.setattr(retention.shutil, "rmtree", real_rmtree)
    second = purge(db, data, PERIOD)
    assert (second.jobs, second.folders, second.failed) == (0, [stuck], [])
    assert not stuck.exists() and second.bytes_freed == 1000
    assert chain_ok(db) and len(purge_records(db)) == 2


def test_nothing_is_deleted_when_the_audit_record_cannot_be_written(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    job_id = add_job(db, data, OLD, result=CLASSIFIED)
    before = files_under(data)

    def refuse(*_args: Any) -> None:
        raise ApiError("audit_unavailable", "the audit trail cannot be written")

    monkeypatch.setattr(retention, "append", refuse)
    with pytest.raises(InputError, match="nothing was purged"):
        purge(db, data, PERIOD)
    assert files_under(data) == before
    assert job_result(db, job_id) == CLASSIFIED and purge_records(db) == []


def test_keep_results_deletes_inputs_then_a_full_purge_the_rest(
    db: Database, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    job_id = add_job(db, data, OLD, result=CLASSIFIED)
    kept = purge(db, data, PERIOD, keep_results=True)
    assert kept.jobs == 1 and kept.folders == [data / "uploads" / job_id]
    assert result_dir(data, job_id).is_dir()
    marked = job_result(db, job_id)
    assert marked is not None and marked["input_purged"] is True
    assert {k: v for k, v in marked.items() if k not in ("input_purged", "purged_at")} == CLASSIFIED
    assert purge(db, data, PERIOD, keep_results=True).jobs == 0

    full = purge(db, data, PERIOD)
    assert full.jobs == 1 and full.folders == [result_dir(data, job_id)]
    assert (job_result(db, job_id) or {}).get("purged") is True


def test_in_flight_data_survives_a_zero_period(db: Database, tmp_path: Path) -> None:
    """``--older-than 0`` purges every finished job, but nothing still being written."""
    data = tmp_path / "data"
    done = add_job(db, data, dt.timedelta(seconds=1), result=CLASSIFIED)
    queued = add_job(db, data, None, state="queued")
    add_series(db, "2.25.9", "receiving", dt.timedelta(minutes=5))
    make_folder(data / "incoming" / "2.25.9")
    upload_in_flight = make_folder(data / "uploads" / str(uuid.uuid4()))
    report = purge(db, data, dt.timedelta(0))
    assert report.jobs == 1 and (report.series, report.expired) == (0, 0)
    assert not (data / "uploads" / done).exists()
    assert (data / "uploads" / queued).is_dir() and upload_in_flight.is_dir()
    assert (data / "incoming" / "2.25.9").is_dir()
    with db.session() as session:
        row = session.scalars(select(DicomSeries)).one()
        assert row.state == "receiving" and row.reidentification is not None


def test_bad_period_or_data_folder_is_an_input_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be negative"):
        purge(db, tmp_path, -dt.timedelta(days=1))
    with pytest.raises(InputError, match="no such data folder"):
        purge(db, tmp_path / "missing", PERIOD)
    assert purge_records(db) == []


def test_report_summary_fits_the_audit_target() -> None:
    report = PurgeReport(cutoff=utcnow(), dry_run=False, jobs=10**9, series=10**9)
    report.sessions = report.tokens = 10**9
    assert len(report.summary(dt.timedelta(days=36500))) <= 128
