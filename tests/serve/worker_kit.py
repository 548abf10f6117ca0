"""Building blocks for the worker tests: ``medsight worker`` processes and jobs queued straight
into the database (as the API queues them: de-identified input stored, job row and its
``predict_submit`` audit record in one transaction).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from service_kit import identity
from sqlalchemy import func, select

from medsight.imaging.io.ct_writer import write_ct_series
from medsight.imaging.io.volume import Volume
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.jobs.queue import new_job_id
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import Database
from medsight.serve.store.deid_key import service_policy
from medsight.serve.store.deidentified_input import folder_digest, store_deidentified
from medsight.serve.store.schema import AuditRecord, Job, User, utcnow

#: short lease times, so that tests see stalls in seconds
FAST_LEASES = {
    "MEDSIGHT_HEARTBEAT_SECONDS": "0.5",
    "MEDSIGHT_STALL_SECONDS": "3",
    "MEDSIGHT_POLL_SECONDS": "0.5",
}


def queue_jobs(
    db: Database,
    settings: ServiceSettings,
    registry: ModelRegistry,
    model: str,
    files: list[bytes],
    count: int,
    user: str = "service",
) -> list[str]:
    """Queue ``count`` jobs of ``model`` on the upload ``files``; returns their ids."""
    version = max(registry.list()[model], key=int)
    sha256 = registry.entry(model, version)["sha256"]
    uploads = Path(settings.data_dir) / "uploads"
    first = uploads / new_job_id()
    stored = store_deidentified(files, first, service_policy(settings), settings)
    ids = []
    with db.write() as session:
        owner = session.execute(select(User).where(User.name == user)).scalar_one()
        for i in range(count):
            job_id = first.name if i == 0 else new_job_id()
            if i:
                shutil.copytree(first, uploads / job_id)
            session.add(
                Job(
                    id=job_id,
                    user_id=owner.id,
                    model_name=model,
                    model_version=version,
                    model_sha256=sha256,
                    input_kind=stored.kind,
                    input_sha256=folder_digest(uploads / job_id),
                    state="queued",
                )
            )
            session.flush()
            append(
                session,
                AuditEvent(
                    actor=owner.name,
                    role=owner.role,
                    action="predict_submit",
                    outcome="queued",
                    model_name=model,
                    model_version=version,
                    model_sha256=sha256,
                    input_sha256=stored.sha256,
                    target=job_id,
                ),
            )
            ids.append(job_id)
        session.commit()
    return ids


@dataclass
class WorkerProcess:
    """One ``python -m medsight worker`` process, its output in files under ``folder``."""

    process: subprocess.Popen
    folder: Path
    log: Path  # this process's stderr (earlier processes in ``folder`` wrote others)
    started: float = field(default_factory=time.monotonic)
    ready_at: float | None = None

    @classmethod
    def start(
        cls, folder: Path, settings: ServiceSettings, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "medsight",
            "worker",
            "--data",
            str(settings.data_dir),
            "--registry",
            str(settings.registry),
            "--database-url",
            settings.resolved_database_url(),
        ]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
        clean.update({**FAST_LEASES, "OMP_NUM_THREADS": "1", **(env or {})})
        n = len(list(folder.glob("stderr*")))
        with open(folder / f"stdout{n}", "wb") as out, open(folder / f"stderr{n}", "wb") as err:
            process = subprocess.Popen(command, cwd=folder, env=clean, stdout=out, stderr=err)
        return cls(process, folder, folder / f"stderr{n}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> bool:
        """Whether it runs its job threads (and reaper) yet: it logs that once it has started."""
        if self.ready_at is None and " thread(s) on " in self.log.read_text(errors="replace"):
            self.ready_at = time.monotonic()
        return self.ready_at is not None

    def stderr(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("stderr*")))

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        """SIGCONT (in case it was stopped), SIGTERM, then SIGKILL after a minute."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def big_series(folder: Path) -> list[bytes]:
    """A 64-slice 192x192 CT series: seconds of segmentation, long enough to act mid-job."""
    rng = np.random.default_rng(0)
    array = rng.normal(-700, 50, (64, 192, 192)).astype(np.float32)
    array[:, 48:144, 48:144] = 40.0
    paths = write_ct_series(Volume(array, (3.0, 2.0, 2.0), modality="CT"), identity(), folder)
    return [p.read_bytes() for p in paths]


def read_jobs(db: Database) -> dict[str, Job]:
    with db.session() as session:
        return {job.id: job for job in session.execute(select(Job)).scalars()}


def audit_of(db: Database, job_id: str) -> list[tuple[str, str]]:
    """(action, outcome) of the job's audit records, in order."""
    with db.session() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.outcome)
            .where(AuditRecord.target == job_id)
            .order_by(AuditRecord.seq)
        ).all()
    return [(action, outcome) for action, outcome in rows]


def oldest_heartbeat_s(db: Database) -> float:
    """Age in seconds of the stalest heartbeat of a running job, on the database's clock."""
    with db.session() as session:
        oldest = session.execute(
            select(func.min(Job.heartbeat_at)).where(
                Job.state == "running", Job.lease_token.is_not(None)
            )
        ).scalar_one()
        if oldest is None:
            return 0.0
        if db.engine.dialect.name == "postgresql":
            now = session.execute(select(func.now())).scalar_one()
        else:
            now = utcnow()
    if oldest.tzinfo is None:  # SQLite gives back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return (now - oldest).total_seconds()
