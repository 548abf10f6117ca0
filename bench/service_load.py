"""Benchmark: `medsight serve` under concurrent clients: throughput, latency, refusals, lost jobs.

Starts the real service (``python -m medsight serve`` on a free loopback port, its own data
folder and database, users made beforehand in that database) and drives it with asyncio
httpx clients. Each client loops for a fixed time: the 2D route (one PNG, answered 200
synchronously) or the 3D route (a zipped DICOM CT series, answered 202; the client polls
``/v1/jobs/{id}`` until ``done`` or ``failed``, first after 0.1 s, then 1.5x longer each
time up to 1 s). No new submission starts after the time is up; work in flight finishes,
so a level's rate is completed requests over the time until the last one finished.

Two phases, each against a freshly started service:

* capacity: 1, 8 and 32 clients per route, one user per client, the rate limit out of the
  way (``MEDSIGHT_RATE_PER_MINUTE`` 1,000,000) and room for every client
  (``MEDSIGHT_QUEUE_MAX`` = the most clients, so 2D capacity is ``SYNC_MAX`` 4 running +
  that many waiting). Here any 5xx (503 included) or lost request is a failure.
* overload: small limits (``SYNC_MAX`` 2, ``QUEUE_MAX`` 8, 60 requests/minute per user) and
  twice as many clients as they admit (2D: 2 x (2 + 8) = 20; 3D: 2 x 8 = 16), sharing a few
  users so the per-user rate limit binds too. After a 429 or 503 a client waits
  min(Retry-After, 0.5 s), so the offered load stays at 2x rather than backing off as a
  polite client would. The only refusals allowed are 429 and 503, each with Retry-After.

A request is lost when its submission got no HTTP answer (connection error, timeout) or its
accepted job is not ``done``/``failed`` in the service's database once the level is over
(every job id is looked up there, not only through the API). The script exits 1 on any lost
request, any 5xx other than 503, a capacity-phase 503, or a refusal without Retry-After.

Models: ``--model-2d RUN`` / ``--model-3d RUN`` register trained runs (e.g. ``runs/demo``
for 3D). Without them the models are untrained, with the demo's architectures and inputs:
2D ``lungct-cnn`` (``spatial_dims=2``, depth 5) on 1x64x64; 3D ``lungct-cnn`` depth 5 on the
40x64x104 lung crop at (5.0, 2.937, 2.937) mm that `medsight demo` plans for its default
cohort (``runs/demo/plan.json``). Latency does not depend on weight values, so untrained
models time the same work. The 3D upload is one synthetic chest CT of the demo's small size
(48 slices of 128x128, `medsight.imaging.synth.chest_ct`); the 2D upload is one of its slices as an
8-bit 128x128 PNG.

Clients and service share the machine: on 2 cores the client's own CPU use is part of what
is measured. Results go to ``.bench/service_load/results.json`` with the machine's load.

    .venv/bin/python bench/service_load.py [--quick] [--model-2d RUN] [--model-3d RUN] \\
        [--database-url postgresql+psycopg://...] [--workdir DIR] [--levels 1,8,32]

At the defaults a run takes about 6.5 minutes on 2 cores; ``--quick`` (1 and 8 clients,
5-8 s per level) about 2, most of it two service starts and 3D queues draining.

Worker scaling (``--scale-workers 1,2,4``) replaces the two phases: for each count, an
API-only service (``medsight serve --workers 0``) and that many ``medsight worker`` processes
share one PostgreSQL database (``--database-url``, or a throwaway server started with
tests/serve/postgres_server.py); ``--scale-jobs`` 3D jobs are submitted at once and their
rate is jobs over the span from the first job's start to the last one's end, as the
database recorded them. Each worker gets cores / workers OpenMP threads. Results go to
``.bench/service_load/scaling.json``.

    .venv/bin/python bench/service_load.py --scale-workers 1,2,4 [--scale-jobs 24]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from medsight.imaging.io.ct_writer import write_ct_series
from medsight.imaging.models.checkpoint import ModelContract, library_versions, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.auth.users import HOST_CLI, add_user
from medsight.serve.store.database import Database, make_engine
from medsight.serve.store.schema import Job

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".bench" / "service_load"
MODEL_2D, MODEL_3D = "bench-2d", "bench-3d"
CLASSES = ["normal", "benign", "malignant"]
TERMINAL = ("done", "failed")
#: the rate limit of the capacity phase: high enough never to bind
UNLIMITED_RATE = 1_000_000
OVERLOAD = {"sync_max": 2, "queue_max": 8, "rate_per_minute": 60}
POLL_FIRST_S, POLL_GROWTH, POLL_MAX_S = 0.1, 1.5, 1.0
REFUSAL_WAIT_S = 0.5
REQUEST_TIMEOUT_S = 120.0

# the 3D classifier `medsight demo` trains on its default cohort (runs/demo/model.json)
DEMO_3D = ModelContract(
    model_name="lungct-cnn",
    class_names=CLASSES,
    model_kwargs={"depth": 5},
    preprocess=PreprocessContract(
        spacing_mm=(5.0, 2.937, 2.937),
        normalisation="window",
        window_hu=(-1000.0, 400.0),
        shape=(40, 64, 104),
        crop_to="lungs",
        mask_outside_lungs=True,
        modality="CT",
    ),
    seed=0,
)
# a 2D classifier on 64x64 images; the planner's depth rule, log2 of the smallest
# in-plane size capped at 5, gives depth 5
DEMO_2D = ModelContract(
    model_name="lungct-cnn",
    class_names=CLASSES,
    spatial_dims=2,
    model_kwargs={"depth": 5},
    preprocess=PreprocessContract(
        spacing_mm=(1.0, 1.0, 1.0),
        window_hu=(0.0, 255.0),
        shape=(1, 64, 64),
        crop_to="body",
        mask_outside_lungs=False,
        modality="OT",
    ),
    seed=0,
)


# ---------------------------------------------------------------- setup


def untrained_run(folder: Path, contract: ModelContract) -> Path:
    """A run folder with ``contract`` and random weights (fixed seed)."""
    torch.manual_seed(0)
    model = create_model(
        contract.model_name,
        spatial_dims=contract.spatial_dims,
        num_classes=len(contract.class_names),
        **contract.model_kwargs,
    )
    versioned = contract.model_copy(update={"versions": library_versions()})
    save_checkpoint(folder, model, versioned)
    return folder


def make_uploads(work: Path) -> tuple[bytes, bytes]:
    """The 2D upload (PNG bytes) and the 3D upload (zip of a DICOM CT series)."""
    spec = plan_cohort(1, seed=7, size="small")[0]
    volume, _ = case_volume(spec)
    series = work / "upload-series"
    shutil.rmtree(series, ignore_errors=True)
    paths = write_ct_series(volume, spec.identity, series)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.name)
    middle = volume.array[volume.array.shape[0] // 2]
    grey = np.clip((middle + 1000.0) / 1400.0 * 255.0, 0, 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(grey).save(png, format="PNG")
    return png.getvalue(), buffer.getvalue()


def make_users(database_url: str, count: int, stamp: str) -> list[str]:
    """``count`` clinician users in the service's database; returns their API tokens."""
    db = Database(database_url)
    tokens = []
    try:
        with db.write() as session:
            for i in range(count):
                _, token = add_user(
                    session, f"load-{stamp}-{i:02d}", "clinician", token_days=1, actor=HOST_CLI
                )
                tokens.append(token)
            session.commit()
    finally:
        db.close()
    return tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``python -m medsight serve`` as a subprocess, with MEDSIGHT_* settings in its env."""

    def __init__(
        self,
        work: Path,
        registry: Path,
        database_url: str,
        settings: dict[str, int],
        log: Path,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
        env.update({f"MEDSIGHT_{k.upper()}": str(v) for k, v in settings.items()})
        command = [
            sys.executable,
            "-m",
            "medsight",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data",
            str(work / "data"),
            "--registry",
            str(registry),
            "--database-url",
            database_url,
            *extra,
        ]
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout_s: float = 120.0) -> float:
        """Seconds until ``/healthz`` answered 200.

        Raises:
            RuntimeError: the process exited or did not answer in time (see its log).
        """
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.process.returncode}; see {self.log.name}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"service did not answer /healthz in {timeout_s:.0f} s; see {self.log.name}"
        )

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


# ---------------------------------------------------------------- load


@dataclass
class Level:
    """What one level's clients saw, and what the database says of their jobs."""

    phase: str
    route: str
    clients: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    #: 3D: submission to its 202 (upload, de-identification, storage, queueing)
    accept_s: list[float] = field(default_factory=list)
    submit_codes: Counter[int] = field(default_factory=Counter)
    poll_codes: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    no_retry_after: int = 0
    job_ids: list[str] = field(default_factory=list)
    failed_jobs: int = 0
    lost_jobs: int = 0
    run_s: list[float] = field(default_factory=list)

    def lost(self) -> int:
        return self.unanswered + self.lost_jobs

    def bad_5xx(self) -> int:
        codes = self.submit_codes + self.poll_codes
        return sum(n for c, n in codes.items() if c >= 500 and c != 503)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        return {
            "phase": self.phase,
            "route": self.route,
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "completed": len(lat),
            "requests_per_s": round(len(lat) / self.seconds, 3) if self.seconds else 0.0,
            "p50_s": _quantile(lat, 50),
            "p99_s": _quantile(lat, 99),
            "max_s": round(lat[-1], 4) if lat else None,
            "accept_p50_s": _quantile(self.accept_s, 50),
            "accept_p99_s": _quantile(self.accept_s, 99),
            "submit_codes": {str(k): v for k, v in sorted(self.submit_codes.items())},
            "poll_codes": {str(k): v for k, v in sorted(self.poll_codes.items())},
            "errors": dict(self.errors),
            "unanswered_submissions": self.unanswered,
            "refusals_without_retry_after": self.no_retry_after,
            "jobs_accepted": len(self.job_ids),
            "jobs_failed": self.failed_jobs,
            "jobs_lost": self.lost_jobs,
            "lost": self.lost(),
            "server_run_s_median": round(statistics.median(self.run_s), 4) if self.run_s else None,
        }


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, rounded; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1], 4)


def _refusal_wait(response: httpx.Response, level: Level) -> float:
    retry_after = response.headers.get("retry-after")
    if retry_after is None:
        level.no_retry_after += 1
        return REFUSAL_WAIT_S
    return min(float(retry_after), REFUSAL_WAIT_S) * random.uniform(0.5, 1.0)


async def _submit(
    http: httpx.AsyncClient, level: Level, model: str, part: tuple[str, bytes, str], token: str
) -> httpx.Response | None:
    try:
        response = await http.post(
            f"/v1/predict/{model}",
            files=[("files", part)],
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.TransportError as exc:
        level.errors[f"submit {type(exc).__name__}"] += 1
        level.unanswered += 1
        await asyncio.sleep(REFUSAL_WAIT_S)
        return None
    level.submit_codes[response.status_code] += 1
    if response.status_code in (429, 503):
        await asyncio.sleep(_refusal_wait(response, level))
    return response


async def _client_2d(
    http: httpx.AsyncClient, level: Level, png: bytes, token: str, stop_at: float
) -> None:
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        response = await _submit(http, level, MODEL_2D, ("slice.png", png, "image/png"), token)
        if response is not None and response.status_code == 200:
            level.latencies_s.append(time.perf_counter() - start)
            level.job_ids.append(response.json()["job_id"])


async def _client_3d(
    http: httpx.AsyncClient,
    level: Level,
    series_zip: bytes,
    token: str,
    stop_at: float,
    give_up_at: float,
) -> None:
    header = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        part = ("series.zip", series_zip, "application/zip")
        response = await _submit(http, level, MODEL_3D, part, token)
        if response is None or response.status_code != 202:
            continue
        level.accept_s.append(time.perf_counter() - start)
        body = response.json()
        level.job_ids.append(body["job_id"])
        wait = POLL_FIRST_S
        while time.monotonic() < give_up_at:
            await asyncio.sleep(wait)
            wait = min(wait * POLL_GROWTH, POLL_MAX_S)
            try:
                poll = await http.get(body["status_url"], headers=header)
            except httpx.TransportError as exc:
                level.errors[f"poll {type(exc).__name__}"] += 1
                continue
            level.poll_codes[poll.status_code] += 1
            if poll.status_code in (429, 503):
                await asyncio.sleep(_refusal_wait(poll, level))
            elif poll.status_code == 200 and poll.json()["state"] in TERMINAL:
                level.latencies_s.append(time.perf_counter() - start)
                break


async def drive(
    url: str,
    level: Level,
    tokens: list[str],
    png: bytes,
    series_zip: bytes,
    duration_s: float,
    drain_s: float,
) -> None:
    """Run ``level.clients`` clients for ``duration_s``; in-flight jobs get ``drain_s`` more."""
    # idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them, or
    # a request sent on a connection the server is closing fails with ReadError
    limits = httpx.Limits(
        max_connections=level.clients + 4,
        max_keepalive_connections=level.clients,
        keepalive_expiry=2.0,
    )
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=10.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        start = time.monotonic()
        stop_at = start + duration_s
        give_up_at = stop_at + drain_s
        if level.route == "2d":
            runs = [
                _client_2d(http, level, png, tokens[i % len(tokens)], stop_at)
                for i in range(level.clients)
            ]
        else:
            runs = [
                _client_3d(http, level, series_zip, tokens[i % len(tokens)], stop_at, give_up_at)
                for i in range(level.clients)
            ]
        await asyncio.gather(*runs)
        level.seconds = time.monotonic() - start


def check_jobs(database_url: str, level: Level, wait_s: float) -> None:
    """Look every accepted job up in the database; still not done/failed after ``wait_s``: lost."""
    # a bare engine, not `Database`: reading must not migrate (nor refuse) the service's schema
    engine = make_engine(database_url)
    columns = (Job.id, Job.state, Job.started, Job.finished)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            rows: dict[str, Any] = {}
            with Session(engine) as session:
                for i in range(0, len(level.job_ids), 500):
                    chunk = level.job_ids[i : i + 500]
                    for row in session.execute(select(*columns).where(Job.id.in_(chunk))):
                        rows[row.id] = row
            pending = [j for j in level.job_ids if j not in rows or rows[j].state not in TERMINAL]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    finally:
        engine.dispose()
    level.lost_jobs = len(pending)
    level.failed_jobs = sum(1 for row in rows.values() if row.state == "failed")
    level.run_s = [
        (row.finished - row.started).total_seconds()
        for row in rows.values()
        if row.finished is not None and row.started is not None
    ]


def run_level(
    service: Service,
    database_url: str,
    level: Level,
    tokens: list[str],
    uploads: tuple[bytes, bytes],
    duration_s: float,
    drain_s: float,
) -> Level:
    asyncio.run(drive(service.url, level, tokens, *uploads, duration_s, drain_s))
    check_jobs(database_url, level, wait_s=drain_s if level.route == "3d" else 5.0)
    s = level.summary()
    print(
        f"  {level.phase:8s} {level.route} x{level.clients:<3d} {s['completed']:5d} done "
        f"{s['requests_per_s']:7.2f}/s p50 {_ms(s['p50_s'])} p99 {_ms(s['p99_s'])} "
        f"codes {_codes(level)} lost {level.lost()}",
        flush=True,
    )
    return level


def warm_up(service: Service, token: str, uploads: tuple[bytes, bytes]) -> dict[str, float]:
    """First request per model (loads and verifies it); its latency is reported apart."""
    header = {"Authorization": f"Bearer {token}"}
    out = {}
    with httpx.Client(base_url=service.url, timeout=REQUEST_TIMEOUT_S) as http:
        start = time.perf_counter()
        r = http.post(
            f"/v1/predict/{MODEL_2D}", files=[("files", ("slice.png", uploads[0]))], headers=header
        )
        if r.status_code != 200:
            raise RuntimeError(f"2D warm-up answered {r.status_code}: {r.text[:300]}")
        out["2d_first_s"] = time.perf_counter() - start
        start = time.perf_counter()
        r = http.post(
            f"/v1/predict/{MODEL_3D}", files=[("files", ("series.zip", uploads[1]))], headers=header
        )
        if r.status_code != 202:
            raise RuntimeError(f"3D warm-up answered {r.status_code}: {r.text[:300]}")
        while True:
            body = http.get(r.json()["status_url"], headers=header).json()
            if body["state"] in TERMINAL:
                break
            time.sleep(0.1)
        if body["state"] != "done":
            raise RuntimeError(f"3D warm-up job failed: {body.get('error')}")
        out["3d_first_s"] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _codes(level: Level) -> str:
    text = " ".join(f"{c}:{n}" for c, n in sorted(level.submit_codes.items()))
    polls = {c: n for c, n in level.poll_codes.items() if c != 200}
    if polls:
        text += " | poll " + " ".join(f"{c}:{n}" for c, n in sorted(polls.items()))
    return text or "-"


def print_table(levels: list[Level]) -> None:
    print(
        "| phase | route | clients | completed | req/s | p50 | p99 | 3D 202 p50 / p99 "
        "| server run p50 | submit codes (poll non-200) | errors | lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for level in levels:
        s = level.summary()
        errors = sum(level.errors.values())
        accept = "-"
        if level.route == "3d":
            accept = f"{_ms(s['accept_p50_s'])} / {_ms(s['accept_p99_s'])}"
        print(
            f"| {level.phase} | {level.route} | {level.clients} | {s['completed']} | "
            f"{s['requests_per_s']:.2f} | {_ms(s['p50_s'])} | {_ms(s['p99_s'])} | "
            f"{accept} | {_ms(s['server_run_s_median'])} | {_codes(level)} | {errors} | "
            f"{level.lost()} |"
        )


def problems(levels: list[Level], phases: list[dict[str, Any]]) -> list[str]:
    """Every way the run broke the service's promises (empty: none)."""
    found = [
        f"{p['phase']} service exited with {p['exit_code']}"
        for p in phases
        if p["exit_code"] not in (0, None)
    ]
    for level in levels:
        name = f"{level.phase} {level.route} x{level.clients}"
        codes = level.submit_codes + level.poll_codes
        if level.bad_5xx():
            found.append(f"{name}: 5xx other than 503: {dict(codes)}")
        if level.lost():
            found.append(f"{name}: {level.lost()} lost request(s)")
        if level.failed_jobs:
            found.append(f"{name}: {level.failed_jobs} job(s) failed on a valid input")
        if level.no_retry_after:
            found.append(f"{name}: {level.no_retry_after} 429/503 without Retry-After")
        if level.phase == "capacity" and codes[503]:
            found.append(f"{name}: {codes[503]} 503 below capacity")
        if level.phase == "overload":
            odd = {c: n for c, n in codes.items() if c >= 300 and c not in (429, 503)}
            if odd:
                found.append(f"{name}: refusals other than 429/503: {odd}")
        elif any(c >= 400 for c in codes):
            found.append(f"{name}: error codes below capacity: {dict(codes)}")
    return found


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------- main


@dataclass
class Workspace:
    """What every phase shares: registry, database (with the users made), uploads, log."""

    work: Path
    registry: Path
    database_url: str
    tokens: list[str]
    uploads: tuple[bytes, bytes]
    log: Path


def run_phase(
    ws: Workspace,
    phase: str,
    settings: dict[str, int],
    plan: list[tuple[str, int, float]],
    tokens: list[str],
    drain_s: float,
    levels: list[Level],
) -> dict[str, Any]:
    """Start a service with ``settings``, run ``plan`` (route, clients, seconds), stop it."""
    service = Service(ws.work, ws.registry, ws.database_url, settings, ws.log)
    record: dict[str, Any] = {"phase": phase, "settings": settings, "users": len(tokens)}
    try:
        record["ready_s"] = service.wait_healthy()
        record["first_request_s"] = first = warm_up(service, tokens[0], ws.uploads)
        print(
            f"{phase} phase: service up in {record['ready_s']:.1f} s, settings {settings}, "
            f"{len(tokens)} user(s); first request 2D {_ms(first['2d_first_s'])}, "
            f"3D {_ms(first['3d_first_s'])} (model load included)",
            flush=True,
        )
        for route, clients, seconds in plan:
            level = Level(phase, route, clients)
            run_level(service, ws.database_url, level, tokens, ws.uploads, seconds, drain_s)
            levels.append(level)
    finally:
        record["exit_code"] = service.stop()
    return record


def setup(args: argparse.Namespace, work: Path, users: int) -> tuple[Workspace, dict[str, Any]]:
    """Register the models, make the uploads and the users; returns what was served."""
    stamp = f"{int(time.time()) % 10**8:08d}"  # unique user names in a reused database
    database_url = args.database_url or f"sqlite:///{(work / 'medsight.db').resolve()}"
    registry_dir = work / f"registry-{stamp}"
    registry = ModelRegistry(registry_dir)
    models = {}
    for name, given, contract in (
        (MODEL_2D, args.model_2d, DEMO_2D),
        (MODEL_3D, args.model_3d, DEMO_3D),
    ):
        run = given or untrained_run(work / "runs" / name, contract)
        registry.add(run, name)
        models[name] = {"run": str(run), "trained": given is not None}
    for name, model in models.items():
        kind = f"trained, {model['run']}" if model["trained"] else "UNTRAINED (random weights)"
        print(f"model {name}: {kind}")
    if not all(m["trained"] for m in models.values()):
        print("  untrained models have the demo's architecture and input size; latency does not")
        print("  depend on weight values")
    uploads = make_uploads(work)
    print(
        f"uploads: 2D PNG {len(uploads[0]) / 1024:.0f} KiB, 3D zipped DICOM series "
        f"{len(uploads[1]) / 1024:.0f} KiB (48 slices of 128x128)"
    )
    tokens = make_users(database_url, users, stamp)
    log = args.out / "service.log"
    log.unlink(missing_ok=True)
    return Workspace(work, registry_dir, database_url, tokens, uploads, log), models


def report(levels: list[Level], found: list[str], load_before: tuple[float, ...]) -> None:
    load_after = os.getloadavg()
    print()
    print(
        f"{os.cpu_count()} CPUs; load average before {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in load_after)}; clients and service share the machine"
    )
    print(
        f"3D latency: submit to done as the client saw it (polls {POLL_FIRST_S} s apart, then "
        f"x{POLL_GROWTH} up to {POLL_MAX_S} s); req/s: completed requests per second"
    )
    print_table(levels)
    print()
    if found:
        print("PROBLEMS:")
        for line in found:
            print(f"  {line}")
    else:
        print(
            "no 5xx other than 503, no 503 below capacity, every refusal with Retry-After, "
            "no request lost"
        )


# ---------------------------------------------------------------- worker scaling


def start_worker(ws: Workspace, threads_per_worker: int) -> subprocess.Popen:
    """``python -m medsight worker`` (one job thread) on the workspace's database and data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    env["OMP_NUM_THREADS"] = str(threads_per_worker)  # the cores shared out, not oversubscribed
    command = [sys.executable, "-m", "medsight", "worker", "--data", str(ws.work / "data")]
    command += ["--registry", str(ws.registry), "--database-url", ws.database_url]
    log = open(ws.log, "ab")  # noqa: SIM115 - the child keeps its own copy of the descriptor
    try:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def scaling_level(ws: Workspace, workers: int, jobs: int) -> dict[str, Any]:
    """An API-only service (``--workers 0``) and ``workers`` worker processes: ``jobs`` 3D jobs
    submitted at once; their rate is jobs over the span from the first start to the last end
    in the database (model loads included: each worker loads the model on its first job)."""
    per_worker = max(1, (os.cpu_count() or 1) // workers)
    service = Service(
        ws.work,
        ws.registry,
        ws.database_url,
        {"queue_max": jobs + 8, "rate_per_minute": UNLIMITED_RATE},
        ws.log,
        extra=("--workers", "0"),
    )
    procs = [start_worker(ws, per_worker) for _ in range(workers)]
    ids: list[str] = []
    try:
        service.wait_healthy()
        header = {"Authorization": f"Bearer {ws.tokens[0]}"}
        with httpx.Client(base_url=service.url, timeout=REQUEST_TIMEOUT_S) as http:
            for _ in range(jobs):
                r = http.post(
                    f"/v1/predict/{MODEL_3D}",
                    files=[("files", ("series.zip", ws.uploads[1]))],
                    headers=header,
                )
                if r.status_code != 202:
                    raise RuntimeError(f"3D submission answered {r.status_code}: {r.text[:300]}")
                ids.append(r.json()["job_id"])
        level = Level("scaling", "3d", workers, job_ids=ids)
        check_jobs(ws.database_url, level, wait_s=600.0)
        engine = make_engine(ws.database_url)
        try:
            with Session(engine) as session:
                rows = session.execute(
                    select(Job.started, Job.finished, Job.worker_id).where(Job.id.in_(ids))
                ).all()
        finally:
            engine.dispose()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        service.stop()
    span = (max(r.finished for r in rows) - min(r.started for r in rows)).total_seconds()
    return {
        "workers": workers,
        "omp_threads_per_worker": per_worker,
        "jobs": jobs,
        "done": jobs - level.failed_jobs - level.lost_jobs,
        "failed": level.failed_jobs,
        "lost": level.lost_jobs,
        "span_s": round(span, 2),
        "jobs_per_s": round(jobs / span, 3),
        "job_run_s_median": round(statistics.median(level.run_s), 3),
        "workers_used": len({r.worker_id.rsplit(":", 1)[0] for r in rows if r.worker_id}),
    }


def worker_scaling(ws: Workspace, counts: list[int], jobs: int) -> list[dict[str, Any]]:
    """1 vs 2 vs 4 ... `medsight worker` processes on one database: 3D jobs/s and the ratio."""
    results = []
    for n in counts:
        r = scaling_level(ws, n, jobs)
        results.append(r)
        print(
            f"  workers x{n} ({r['omp_threads_per_worker']} OMP thread(s) each): "
            f"{r['done']}/{jobs} done in {r['span_s']:.1f} s = {r['jobs_per_s']:.3f} jobs/s, "
            f"job run p50 {_ms(r['job_run_s_median'])}, {r['workers_used']} worker(s) used, "
            f"lost {r['lost']}",
            flush=True,
        )
    base = results[0]["jobs_per_s"]
    print("| worker processes | OMP threads each | jobs | span | jobs/s | vs 1 worker |")
    print("|---|---|---|---|---|---|")
    for r in results:
        r["ratio"] = round(r["jobs_per_s"] / base, 2) if base else None
        print(
            f"| {r['workers']} | {r['omp_threads_per_worker']} | {r['jobs']} | "
            f"{r['span_s']:.1f} s | {r['jobs_per_s']:.3f} | {r['ratio']}x |"
        )
    print(
        f"{os.cpu_count()} CPU cores: worker processes share them, so beyond the core count "
        "(and below it, when one job already uses every core) more workers cannot add rate; "
        "scaling out means workers on more machines."
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-2d", type=Path, help="trained 2D classification run to serve")
    parser.add_argument("--model-3d", type=Path, help="trained 3D run to serve (e.g. runs/demo)")
    parser.add_argument("--database-url", default="", help="service database (default: SQLite)")
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: temp)")
    parser.add_argument(
        "--levels", help="client counts of the capacity phase (default 1,8,32; --quick 1,8)"
    )
    parser.add_argument("--seconds-2d", type=float, default=20.0)
    parser.add_argument("--seconds-3d", type=float, default=40.0)
    parser.add_argument("--seconds-overload", type=float, default=25.0)
    parser.add_argument("--drain", type=float, default=240.0, help="seconds for jobs in flight")
    parser.add_argument("--overload-users", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="short levels, 1 and 8 clients")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--scale-workers",
        help="instead of the load phases: `medsight serve --workers 0` plus this many "
        "`medsight worker` processes in turn (e.g. 1,2,4) on PostgreSQL (--database-url, or "
        "a throwaway server from tests/serve/postgres_server.py), 3D jobs/s for each",
    )
    parser.add_argument("--scale-jobs", type=int, default=24, help="3D jobs per worker count")
    args = parser.parse_args()
    if args.scale_workers:
        return scale_main(args)
    if args.quick:
        args.seconds_2d, args.seconds_3d, args.seconds_overload = 5.0, 6.0, 8.0
    counts = [int(n) for n in (args.levels or ("1,8" if args.quick else "1,8,32")).split(",")]
    started = time.perf_counter()
    load_before = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="service-load-"))
    work.mkdir(parents=True, exist_ok=True)

    capacity = {"rate_per_minute": UNLIMITED_RATE, "queue_max": max(counts), "sync_max": 4}
    capacity_plan = [("2d", n, args.seconds_2d) for n in counts]
    capacity_plan += [("3d", n, args.seconds_3d) for n in counts]
    overload_plan = [
        ("2d", 2 * (OVERLOAD["sync_max"] + OVERLOAD["queue_max"]), args.seconds_overload),
        ("3d", 2 * OVERLOAD["queue_max"], args.seconds_overload),
    ]
    levels: list[Level] = []
    try:
        ws, models = setup(args, work, users=max(counts))
        phases = [
            run_phase(ws, "capacity", capacity, capacity_plan, ws.tokens, args.drain, levels),
            run_phase(
                ws,
                "overload",
                OVERLOAD,
                overload_plan,
                ws.tokens[: args.overload_users],
                args.drain,
                levels,
            ),
        ]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    found = problems(levels, phases)
    report(levels, found, load_before)
    results = {
        "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before]},
        "models": models,
        "uploads_bytes": {"2d_png": len(ws.uploads[0]), "3d_zip": len(ws.uploads[1])},
        "database": args.database_url.split(":")[0] if args.database_url else "sqlite",
        "quick": args.quick,
        "poll_s": {"first": POLL_FIRST_S, "growth": POLL_GROWTH, "max": POLL_MAX_S},
        "refusal_wait_max_s": REFUSAL_WAIT_S,
        "phases": phases,
        "levels": [level.summary() for level in levels],
        "problems": found,
        "total_s": round(time.perf_counter() - started, 1),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"total {results['total_s'] / 60:.1f} min; results: {args.out / 'results.json'}")
    return 1 if found else 0


def scale_main(args: argparse.Namespace) -> int:
    """The worker-scaling run (``--scale-workers``); results in ``scaling.json``."""
    counts = [int(n) for n in args.scale_workers.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="service-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if not args.database_url:
            sys.path.insert(0, str(ROOT / "tests" / "serve"))
            from postgres_server import running_postgres

            args.database_url = stack.enter_context(running_postgres("scaling"))
        if not args.database_url.startswith("postgresql"):
            print("error: --scale-workers needs PostgreSQL (several worker processes)")
            return 2
        try:
            ws, models = setup(args, work, users=1)
            results = worker_scaling(ws, counts, args.scale_jobs)
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
    out = {
        "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before]},
        "models": models,
        "scaling": results,
    }
    (args.out / "scaling.json").write_text(json.dumps(out, indent=1))
    lost = sum(r["lost"] + r["failed"] for r in results)
    print(f"results: {args.out / 'scaling.json'}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
