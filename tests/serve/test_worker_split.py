"""API and workers apart: ``medsight serve --workers 0`` queues, a ``medsight worker`` runs.

The API-only process must never run a job itself; the worker process (another pid, as it
would be on another machine) claims it, and the client sees the result through the API.
Bad worker settings are refused in one line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from service_kit import ct_series_bytes, make_users, register_models, service_settings, upload
from service_process import ServiceProcess, serve_args
from worker_kit import WorkerProcess, read_jobs

from medsight.serve.store.database import Database


def medsight(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--database-url", "sqlite:///:memory:"], {}, "give a SQLite file"),
        (
            [],
            {"MEDSIGHT_HEARTBEAT_SECONDS": "5", "MEDSIGHT_STALL_SECONDS": "6"},
            "stall_seconds must be more than twice heartbeat_seconds",
        ),
        ([], {"MEDSIGHT_WORKERS": "0"}, "must be at least 1"),
    ],
)
def test_bad_worker_settings_are_one_line(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    done = medsight("worker", "--data", str(tmp_path / "data"), *args, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.slow  # two process starts
def test_api_only_service_queues_and_a_worker_process_runs(
    database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, database_url)
    register_models(settings.registry, tmp_path / "runs")
    db = Database(database_url)
    tokens = make_users(db)
    api = ServiceProcess.start(
        tmp_path / "api", *serve_args(tmp_path, database_url), "--workers", "0"
    )
    worker = None
    try:
        api.wait_healthy()
        r = httpx.post(
            f"{api.url}/v1/predict/cls3d",
            files=upload(ct_series_bytes(tmp_path)),
            headers=tokens.header("service"),
            timeout=120.0,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        time.sleep(3.0)  # an API-only process leaves it queued
        assert read_jobs(db)[job_id].state == "queued"
        ready = httpx.get(f"{api.url}/readyz", headers=tokens.header("service"), timeout=30)
        assert ready.status_code == 200, ready.text

        worker = WorkerProcess.start(tmp_path / "worker", settings)
        deadline = time.monotonic() + 240
        body: dict = {}
        while time.monotonic() < deadline:
            body = httpx.get(
                f"{api.url}/v1/jobs/{job_id}", headers=tokens.header("service"), timeout=30
            ).json()
            if body["state"] in ("done", "failed"):
                break
            time.sleep(0.3)
        assert body["state"] == "done", (body, worker.stderr()[-2000:])
        job = read_jobs(db)[job_id]
        assert job.worker_id and job.worker_id.startswith(
            f"{socket.gethostname()[:40]}:{worker.pid}:"
        )
        name = body["result"]["files"][0]
        got = httpx.get(
            f"{api.url}/v1/jobs/{job_id}/files/{name}",
            headers=tokens.header("service"),
            timeout=30,
        )
        assert got.status_code == 200
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
        db.close()
