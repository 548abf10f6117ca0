"""A service killed with SIGKILL mid-job loses nothing and runs nothing twice.

One scenario per database backend, run once (module fixture) and then checked by the tests:
a real ``medsight serve`` process gets a 3D segmentation job that takes seconds and, behind
it, a small job that stays queued; when the database shows the first job running the process
is SIGKILLed. A new process on the same data folder and database must re-queue the
interrupted job (its reaper does, once the killed worker's heartbeat is stale) and finish
both, each with one result and one completion record, and the audit chain must still verify.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from postgres_server import create_database, drop_database
from service_kit import Tokens, ct_series_bytes, identity, make_users, register_models, upload
from service_process import ServiceProcess, serve_args
from sqlalchemy import func, select

from medsight.imaging.io.ct_writer import write_ct_series
from medsight.imaging.io.volume import Volume
from medsight.serve.jobs.worker import result_dir
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import AuditRecord, Job

pytestmark = pytest.mark.slow  # two service starts per backend, and a job run twice


def big_series(folder: Path) -> list[bytes]:
    """A 64-slice 192x192 CT series: seconds of segmentation, long enough to be killed in."""
    rng = np.random.default_rng(0)
    array = rng.normal(-700, 50, (64, 192, 192)).astype(np.float32)
    array[:, 48:144, 48:144] = 40.0
    paths = write_ct_series(Volume(array, (3.0, 2.0, 2.0), modality="CT"), identity(), folder)
    return [p.read_bytes() for p in paths]


def read_jobs(db: Database) -> dict[str, Job]:
    with db.session() as session:
        return {job.id: job for job in session.execute(select(Job)).scalars()}


def poll(db: Database, until: Callable[[dict[str, Job]], bool], timeout_s: float) -> dict:
    """Jobs by id, read until ``until`` holds for them (or time is up)."""
    deadline = time.monotonic() + timeout_s
    while not until(jobs := read_jobs(db)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return jobs


def submit(url: str, tokens: Tokens, model: str, files: list[bytes]) -> str:
    r = httpx.post(
        f"{url}/v1/predict/{model}",
        files=upload(files),
        headers=tokens.header("service"),
        timeout=120.0,
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


@dataclass
class Restarted:
    """What the kill-and-restart scenario left behind, for the tests to check."""

    db: Database
    data_dir: Path
    interrupted: str  # the job running when the process was killed
    queued: str  # the job still queued at the kill
    at_kill: dict[str, tuple[str, int]]  # job id -> (state, attempts) right after the kill
    second_log: str
    fetched: dict[str, int]  # result file -> HTTP status, from the second process


def kill_and_restart(work: Path, database_url: str, db: Database) -> Restarted:
    """The scenario: two jobs, SIGKILL while the first runs, a new process finishes both."""
    register_models(work / "registry", work / "runs")
    tokens = make_users(db)
    big, small = big_series(work / "big"), ct_series_bytes(work)
    first = ServiceProcess.start(work / "first", *serve_args(work, database_url))
    try:
        first.wait_healthy()
        interrupted = submit(first.url, tokens, "seg3d", big)
        queued = submit(first.url, tokens, "cls3d", small)  # one worker: waits its turn
        jobs = poll(db, lambda j: j[interrupted].state != "queued", timeout_s=60)
        assert jobs[interrupted].state == "running", first.stderr()
        first.kill()
    finally:
        first.stop()
    at_kill = {i: (j.state, j.attempts) for i, j in read_jobs(db).items()}

    second = ServiceProcess.start(work / "second", *serve_args(work, database_url))
    try:
        second.wait_healthy()
        finished = ("done", "failed")
        jobs = poll(db, lambda j: all(x.state in finished for x in j.values()), timeout_s=180)
        fetched = {}
        for job_id in (interrupted, queued):
            for name in (jobs[job_id].result or {}).get("files", []):
                r = httpx.get(
                    f"{second.url}/v1/jobs/{job_id}/files/{name}",
                    headers=tokens.header("service"),
                    timeout=60.0,
                )
                fetched[f"{job_id}/{name}"] = r.status_code
    finally:
        second.stop()
    return Restarted(
        db=db,
        data_dir=work / "data",
        interrupted=interrupted,
        queued=queued,
        at_kill=at_kill,
        second_log=second.stderr(),
        fetched=fetched,
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external)]
)
def restarted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Restarted]:
    work = tmp_path_factory.mktemp(f"restart-{request.param}")
    if request.param == "sqlite":
        database_url, server, database = f"sqlite:///{work}/medsight.db", "", ""
    else:
        server, database = request.getfixturevalue("postgres_url"), f"t_{uuid.uuid4().hex}"
        database_url = create_database(server, database)
    db = Database(database_url)
    try:
        yield kill_and_restart(work, database_url, db)
    finally:
        db.close()
        if server:
            drop_database(server, database)


def _job(outcome: Restarted, job_id: str) -> Job:
    with outcome.db.session() as session:
        job = session.get(Job, job_id)
    assert job is not None
    return job


def _audit_actions(outcome: Restarted, job_id: str) -> list[tuple[str, str]]:
    with outcome.db.session() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.outcome)
            .where(AuditRecord.target == job_id)
            .order_by(AuditRecord.seq)
        ).all()
    return [(action, result) for action, result in rows if action != "result_view"]


def test_the_kill_came_mid_job(restarted: Restarted) -> None:
    """Guards the scenario: otherwise the tests below would prove nothing."""
    assert restarted.at_kill == {
        restarted.interrupted: ("running", 1),
        restarted.queued: ("queued", 0),
    }


def test_interrupted_job_is_rerun_and_finished_exactly_once(restarted: Restarted) -> None:
    job = _job(restarted, restarted.interrupted)
    assert (job.state, job.attempts, job.error_code) == ("done", 2, None)
    assert _audit_actions(restarted, job.id) == [
        ("predict_submit", "queued"),
        ("job_attempt", "claimed:1"),
        ("job_requeue", "stalled:1"),  # its heartbeat went stale with the killed process
        ("job_attempt", "claimed:2"),
        ("predict_result", "done"),
    ]
    assert "re-queued 1 job(s)" in restarted.second_log


def test_job_queued_at_the_kill_is_not_lost(restarted: Restarted) -> None:
    job = _job(restarted, restarted.queued)
    assert (job.state, job.attempts, job.error_code) == ("done", 1, None)
    assert _audit_actions(restarted, job.id) == [
        ("predict_submit", "queued"),
        ("job_attempt", "claimed:1"),
        ("predict_result", "done"),
    ]
    with restarted.db.session() as session:
        assert session.execute(select(func.count()).select_from(Job)).scalar_one() == 2


def test_results_are_whole_and_served(restarted: Restarted) -> None:
    for job_id in (restarted.interrupted, restarted.queued):
        files = (_job(restarted, job_id).result or {}).get("files", [])
        folder = result_dir(restarted.data_dir, job_id)
        assert files and all((folder / name).is_file() for name in files), job_id
    assert restarted.fetched and set(restarted.fetched.values()) == {200}
    assert any(name.endswith("segmentation.nii.gz") for name in restarted.fetched)


def test_audit_chain_verifies_after_the_kill(restarted: Restarted) -> None:
    with restarted.db.session() as session:
        check = verify_chain(session)
    assert check.ok, check


def test_killed_attempt_leaves_no_partial_folders(restarted: Restarted) -> None:
    jobs = {restarted.interrupted, restarted.queued}
    for stage in ("uploads", "results"):
        left = {p.name for p in (restarted.data_dir / stage).iterdir()}
        assert left == jobs, (stage, sorted(left - jobs))
