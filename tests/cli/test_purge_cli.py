"""`medsight purge` on a SQLite database: dry run, real run, exit codes, one-line errors."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner, Result

from medsight.cli import purge as purge_cli
from medsight.errors import InputError
from medsight.serve.store import retention
from medsight.serve.store.database import Database
from medsight.serve.store.schema import AuditRecord, Job, User, utcnow

app = typer.Typer()
app.command("purge")(purge_cli.purge)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def service(tmp_path: Path) -> tuple[str, Path, str]:
    """A service database beside its data folder (as `medsight serve` lays them out) with
    one job finished 40 days ago; returns (database URL, data folder, job id)."""
    data = tmp_path / "medsight-data"
    url = f"sqlite:///{tmp_path / 'medsight.db'}"
    job_id = str(uuid.uuid4())
    db = Database(url)
    with db.write() as session:
        user = User(name="ada", role="clinician")
        session.add(user)
        session.flush()
        old = utcnow() - dt.timedelta(days=40)
        session.add(
            Job(
                id=job_id,
                user_id=user.id,
                model_name="m",
                model_version="1",
                model_sha256="0" * 64,
                input_kind="png",
                input_sha256="0" * 64,
                state="done",
                created=old,
                finished=old,
                result={"task": "classify", "predicted": "benign", "files": ["x.png"]},
            )
        )
        session.commit()
    db.close()
    for root in ("uploads", "results"):
        (data / root / job_id).mkdir(parents=True)
        (data / root / job_id / "x.png").write_bytes(b"x" * 2048)
    return url, data, job_id


def job_result(url: str, job_id: str) -> dict:
    db = Database(url)
    try:
        with db.session() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.result is not None
            return job.result
    finally:
        db.close()


def purge_targets(url: str) -> list[str]:
    db = Database(url)
    try:
        with db.session() as session:
            query = select(AuditRecord.target).where(AuditRecord.action == "purge")
            return list(session.scalars(query))
    finally:
        db.close()


def test_dry_run_then_purge(service: tuple[str, Path, str]) -> None:
    url, data, job_id = service
    common = ["--older-than", "30", "--data", str(data), "--database-url", url]
    dry = run(*common, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was changed." in dry.stdout and "would go" in dry.stdout
    assert "4.0 KiB" in dry.stdout
    assert (data / "uploads" / job_id).is_dir() and (data / "results" / job_id).is_dir()
    assert "purged" not in job_result(url, job_id) and purge_targets(url) == []

    done = run(*common)
    assert done.exit_code == 0, done.output
    assert "Dry run" not in done.stdout and "purged" in done.stdout and "4.0 KiB" in done.stdout
    assert not (data / "uploads" / job_id).exists() and not (data / "results" / job_id).exists()
    assert job_result(url, job_id)["purged"] is True
    assert purge_targets(url) == ["older_than=30d jobs=1 series=0 sessions=0 tokens=0 folders=2"]


def test_keep_results_keeps_the_result_folder(service: tuple[str, Path, str]) -> None:
    url, data, job_id = service
    result = run("--older-than", "30", "--data", str(data), "--database-url", url, "--keep-results")
    assert result.exit_code == 0, result.output
    assert not (data / "uploads" / job_id).exists() and (data / "results" / job_id).is_dir()
    assert job_result(url, job_id)["files"] == ["x.png"]


def test_defaults_come_from_the_service_settings(
    service: tuple[str, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data, job_id = service
    monkeypatch.setenv("MEDSIGHT_DATA_DIR", str(data))  # the database lies beside it
    monkeypatch.delenv("MEDSIGHT_DATABASE_URL", raising=False)
    result = run("--older-than", "30")
    assert result.exit_code == 0, result.output
    assert not (data / "uploads" / job_id).exists()
    # --data alone also finds the database beside it, as `medsight serve --data` does
    monkeypatch.setenv("MEDSIGHT_DATA_DIR", str(data.parent / "elsewhere"))
    result = run("--older-than", "30", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert len(purge_targets(url)) == 2


@pytest.mark.parametrize("days", ["-1", "abc", "nan", "inf", "1e9", ""])
def test_bad_period_is_a_one_line_input_error(service: tuple[str, Path, str], days: str) -> None:
    url, data, job_id = service
    result = run("--older-than", days, "--data", str(data), "--database-url", url)
    assert isinstance(result.exception, InputError)
    assert "--older-than" in str(result.exception) and "\n" not in str(result.exception)
    assert (data / "uploads" / job_id).is_dir()


def test_missing_sqlite_file_is_an_input_error_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = run(
        "--older-than", "30", "--data", str(tmp_path), "--database-url", f"sqlite:///{missing}"
    )
    assert isinstance(result.exception, InputError)
    assert "no such database file" in str(result.exception)
    assert not missing.exists()


def test_a_database_without_the_schema_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run(
        "--older-than", "30", "--data", str(tmp_path), "--database-url", f"sqlite:///{empty}"
    )
    assert isinstance(result.exception, InputError)
    assert "not a medsight database" in str(result.exception)
    with sqlite3.connect(empty) as conn:  # no schema was made in it
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_missing_data_folder_is_an_input_error(service: tuple[str, Path, str]) -> None:
    url, data, job_id = service
    result = run("--older-than", "30", "--data", str(data / "typo"), "--database-url", url)
    assert isinstance(result.exception, InputError)
    assert "no such data folder" in str(result.exception)
    assert "purged" not in job_result(url, job_id)


def test_undeletable_folder_exits_1_naming_it(
    service: tuple[str, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data, job_id = service

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(retention, "_remove", refuse)
    result = run("--older-than", "30", "--data", str(data), "--database-url", url)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"could not delete {data / root / job_id}: Permission denied (the next purge retries it)"
        for root in ("results", "uploads")
    ]
