"""`medsight audit verify|export` on a SQLite database: results, exit codes, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from medsight.cli.audit import app, parse_since
from medsight.errors import InputError
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import SCHEMA_VERSION, Database
from medsight.serve.store.schema import AuditRecord, SchemaVersion

runner = CliRunner()


def _append(db: Database, n: int) -> None:
    for i in range(n):
        with db.write() as session:
            append(session, AuditEvent("ada", "admin", "login", "ok", target=f"t{i}"))
            session.commit()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A service database with 5 audit records."""
    url = f"sqlite:///{tmp_path / 'medsight.db'}"
    db = Database(url)
    _append(db, 5)
    db.close()
    return url


def test_verify_ok(url: str) -> None:
    result = runner.invoke(app, ["verify", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "audit chain OK: 5 records checked"


def test_verify_broken_names_the_first_bad_record(url: str) -> None:
    db = Database(url)
    with db.write() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(outcome="denied"))
        session.commit()
    db.close()
    result = runner.invoke(app, ["verify", "--database-url", url])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "audit chain broken at record 3: record changed (2 records before it verified)"
    ]


def test_default_url_comes_from_the_service_settings(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSIGHT_DATABASE_URL", url)
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0 and "5 records" in result.stdout


def test_missing_sqlite_file_is_an_input_error_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = runner.invoke(app, ["verify", "--database-url", f"sqlite:///{missing}"])
    assert isinstance(result.exception, InputError)
    assert "no such database file" in str(result.exception)
    assert not missing.exists()


def test_database_of_another_schema_version_is_refused(url: str) -> None:
    db = Database(url)
    with db.write() as session:
        session.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 1))
        session.commit()
    db.close()
    result = runner.invoke(app, ["verify", "--database-url", url])
    assert isinstance(result.exception, InputError)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(result.exception)


def test_export_to_stdout_as_json_lines(url: str) -> None:
    result = runner.invoke(app, ["export", "--database-url", url])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert all(r["hash"] and r["prev_hash"] for r in records)


def test_export_since_to_a_file(url: str, tmp_path: Path) -> None:
    time.sleep(0.01)
    cut = dt.datetime.now(dt.UTC)
    db = Database(url)
    _append(db, 2)
    db.close()
    out = tmp_path / "exports" / "audit.jsonl"
    since = cut.astimezone(dt.timezone(dt.timedelta(hours=-3))).isoformat()
    result = runner.invoke(
        app, ["export", "--since", since, "--out", str(out), "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == [6, 7]
    assert [p.name for p in out.parent.iterdir()] == ["audit.jsonl"]  # no temp file left


def test_export_since_a_date(url: str) -> None:
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    later = runner.invoke(app, ["export", "--since", tomorrow, "--database-url", url])
    now = runner.invoke(app, ["export", "--since", today, "--database-url", url])
    assert later.exit_code == 0 and later.stdout == ""
    assert len(now.stdout.splitlines()) == 5


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "01/02/2026", "2026-01-01T25:00\n"])
def test_bad_since_is_a_one_line_input_error(url: str, text: str) -> None:
    result = runner.invoke(app, ["export", "--since", text, "--database-url", url])
    assert isinstance(result.exception, InputError)
    assert "--since" in str(result.exception) and "\n" not in str(result.exception)


def test_parse_since_reads_dates_zones_and_utc() -> None:
    utc = dt.UTC
    assert parse_since("2026-03-01") == dt.datetime(2026, 3, 1, tzinfo=utc)
    assert parse_since("2026-03-01T08:30:00Z") == dt.datetime(2026, 3, 1, 8, 30, tzinfo=utc)
    assert parse_since("2026-03-01T08:30+02:00") == dt.datetime(2026, 3, 1, 6, 30, tzinfo=utc)
