"""Chaos: three ``medsight worker`` processes, 60 jobs, a worker SIGKILLed every ~2 s.

One scenario per backend (PostgreSQL: several machines' setup; SQLite: one machine's), run
once by a module fixture and then checked. The jobs are 3D classifications with Grad-CAM
(``cls3d`` on a small CT series, about half a second each: the cheapest 3D job the service
runs). While jobs remain, every ~2 s the test SIGKILLs one of the workers it started, by pid
(one that holds a running job at that moment, so every kill lands mid-job; up to 10 kills),
and starts a new one in its place. Lease times are short (heartbeat 0.5 s, stall 3 s).

What must hold: every job ends done or failed with a reason; each has exactly one
completion record and, when done, exactly one result folder with its files (no attempt
folder left behind); while a worker has been up for a while, no running job's heartbeat
stays stale much past the stall time; the audit trail shows every attempt and still
verifies. ``-s`` prints the counts.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from postgres_server import create_database, drop_database
from service_kit import ct_series_bytes, make_users, register_models, service_settings
from worker_kit import (
    WorkerProcess,
    audit_of,
    oldest_heartbeat_s,
    queue_jobs,
    read_jobs,
)

from medsight.serve.jobs.worker import result_dir
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.schema import Job

pytestmark = pytest.mark.slow  # a minute or two per backend on 2 cores

JOBS, WORKERS, KILL_EVERY_S, MAX_KILLS = 60, 3, 2.0, 10
STALL_S = 3.0  # worker_kit.FAST_LEASES
#: how far past the stall time a dead worker's job may wait for a reaper on a loaded machine
#: (reapers run every stall/4 in every live worker; a restarted one imports torch first)
REAP_SLACK_S = 30.0
TERMINAL = ("done", "failed")


@dataclass
class Chaos:
    db: Database
    data_dir: Path
    jobs: dict[str, Job]
    kills: int
    starts: int
    stalest_heartbeat_s: float
    seconds: float
    logs: str
    exit_codes: list[int]


def run_chaos(work: Path, database_url: str, db: Database) -> Chaos:
    settings = service_settings(work, database_url)
    registry = register_models(settings.registry, work / "runs")
    make_users(db)
    queue_jobs(db, settings, registry, "cls3d", ct_series_bytes(work), JOBS)
    env = {"MEDSIGHT_MAX_ATTEMPTS": "6"}
    start = time.monotonic()
    workers = [WorkerProcess.start(work / f"w{i}", settings, env) for i in range(WORKERS)]
    starts, kills, stalest = WORKERS, 0, 0.0
    rng = random.Random(0)
    try:
        next_kill = time.monotonic() + KILL_EVERY_S
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            jobs = read_jobs(db)
            if all(j.state in TERMINAL for j in jobs.values()):
                break
            # a stalled job is taken back by a live worker's reaper: judge staleness only once
            # some worker has run long enough to have reaped (a restarted worker spends tens
            # of seconds importing torch on a loaded machine, and reaps nothing meanwhile)
            up = [time.monotonic() - w.ready_at for w in workers if w.ready() and w.ready_at]
            if up and max(up) > STALL_S + REAP_SLACK_S:
                stalest = max(stalest, oldest_heartbeat_s(db))
            holders = {
                int(j.worker_id.split(":")[1])
                for j in jobs.values()
                if j.state == "running" and j.worker_id
            }
            busy = [i for i, w in enumerate(workers) if w.pid in holders]
            if kills < MAX_KILLS and time.monotonic() >= next_kill and busy:
                # only a worker that holds a job: one still importing torch would die having
                # done nothing, and on a loaded machine every worker could be killed that way
                victim = rng.choice(busy)
                workers[victim].kill()
                kills += 1
                workers[victim] = WorkerProcess.start(work / f"w{victim}", settings, env)
                starts += 1
                next_kill = time.monotonic() + KILL_EVERY_S
            time.sleep(0.1)
        seconds = time.monotonic() - start
    finally:
        exit_codes = [w.stop() for w in workers]
    logs = "\n".join(w.stderr() for w in workers)
    return Chaos(
        db=db,
        data_dir=settings.data_dir,
        jobs=read_jobs(db),
        kills=kills,
        starts=starts,
        stalest_heartbeat_s=stalest,
        seconds=seconds,
        logs=logs,
        exit_codes=exit_codes,
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.external)]
)
def chaos(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    work = tmp_path_factory.mktemp(f"chaos-{request.param}")
    if request.param == "sqlite":
        database_url, server, database = f"sqlite:///{work}/medsight.db", "", ""
    else:
        server, database = request.getfixturevalue("postgres_url"), f"t_{uuid.uuid4().hex}"
        database_url = create_database(server, database)
    db = Database(database_url)
    try:
        outcome = run_chaos(work, database_url, db)
        states = Counter(j.state for j in outcome.jobs.values())
        completions = sum(a == "predict_result" for j in outcome.jobs for a, _ in audit_of(db, j))
        print(
            f"\nchaos [{request.param}]: jobs={len(outcome.jobs)} kills={outcome.kills} "
            f"(each mid-job) worker starts={outcome.starts} "
            f"attempts={sum(j.attempts for j in outcome.jobs.values())} "
            f"completions={completions} done={states['done']} failed={states['failed']} "
            f"stalest heartbeat seen={outcome.stalest_heartbeat_s:.1f} s "
            f"wall={outcome.seconds:.0f} s"
        )
        yield outcome
    finally:
        db.close()
        if server:
            drop_database(server, database)


def test_kills_landed_mid_job(chaos: Chaos) -> None:
    """Guards the scenario: without re-run jobs the checks below would prove little."""
    assert chaos.kills >= 5, chaos.logs[-3000:]
    assert any(j.attempts >= 2 for j in chaos.jobs.values())


def test_every_job_ends_done_or_failed_with_a_reason(chaos: Chaos) -> None:
    assert len(chaos.jobs) == JOBS
    for job in chaos.jobs.values():
        assert job.state in TERMINAL, (job.id, job.state, chaos.logs[-3000:])
        if job.state == "failed":
            assert job.error_code and job.error_message, job.id


def test_each_job_has_one_completion_and_one_result_folder(chaos: Chaos) -> None:
    done = {j.id for j in chaos.jobs.values() if j.state == "done"}
    for job in chaos.jobs.values():
        trail = audit_of(chaos.db, job.id)
        assert sum(a == "predict_result" for a, _ in trail) == 1, (job.id, trail)
        assert sum(a == "job_attempt" for a, _ in trail) == job.attempts, (job.id, trail)
    for job_id in done:
        files = (chaos.jobs[job_id].result or {}).get("files", [])
        folder = result_dir(chaos.data_dir, job_id)
        assert files and all((folder / name).is_file() for name in files), job_id
    left = {p.name for p in (chaos.data_dir / "results").iterdir()}
    assert left == done, sorted(left ^ done)[:5]  # no attempt folder, no stray result


def test_no_job_stays_running_past_the_stall_time(chaos: Chaos) -> None:
    assert chaos.stalest_heartbeat_s < STALL_S + REAP_SLACK_S


def test_audit_chain_verifies_after_the_kills(chaos: Chaos) -> None:
    with chaos.db.session() as session:
        check = verify_chain(session)
    assert check.ok, check


def test_workers_stop_cleanly_on_sigterm(chaos: Chaos) -> None:
    """The last generation of workers, stopped with SIGTERM, exited 0 and said so."""
    assert chaos.exit_codes == [0] * WORKERS, chaos.logs[-2000:]
    assert len(re.findall(r"medsight worker \S+ stopped", chaos.logs)) == WORKERS
