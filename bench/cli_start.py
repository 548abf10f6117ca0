"""How fast the `medsight` command answers: --help, --version, every verb's --help, the light
verbs, and `medsight serve` until ``GET /healthz`` answers 200.

Each command runs as a fresh subprocess: one warm-up, then ``--runs`` timed runs whose median
wall time and median peak RSS (the child's own ``ru_maxrss``, from ``os.wait4``) are printed,
with the ratio to the reference ``python -c "import typer, rich"`` (goal: under 1 s, ideally at
most 3x the reference), and the median CPU time (user + system: less sensitive to other load on
the machine than wall time; for `serve`, up to the moment /healthz answered). A separate pass
with ``PYTHONPROFILEIMPORTTIME`` says which heavy packages (torch, lightning, monai, fastapi,
numpy) each command imported (`serve`: by its shutdown, its background thread included; its MB
too). The verbs are enumerated from the typer app in-process; `inspect` reads one slice of a
one-case `medsight synth chest-ct` series. `serve` runs on a free loopback port with a fresh
data folder, registry and SQLite database per run, is polled every 10 ms, and gets SIGTERM once
it answers (uvicorn re-raises the signal after its graceful shutdown: exit -15).

Timings depend on the machine (the CPU's model name is printed first) and on its load.

Usage: ``python bench/cli_start.py [--runs 5] [--only {help,verbs,light,serve} ...]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from medsight.hardware import cpu_summary

#: packages whose import the table reports (in this order)
HEAVY = ("torch", "lightning", "monai", "fastapi", "numpy")
PYTHON = sys.executable


def medsight_command() -> list[str]:
    """The console script beside this interpreter, else ``python -m medsight``."""
    script = Path(PYTHON).parent / "medsight"
    return [str(script)] if script.is_file() else [PYTHON, "-m", "medsight"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without MEDSIGHT_* settings (they would change what runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    env.update(extra or {})
    return env


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float
    rss_mb: float
    returncode: int


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far, all threads (None without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(
    command: list[str],
    ready: Callable[[], bool] | None = None,
    env: dict[str, str] | None = None,
    stderr_path: Path | None = None,
) -> Sample:
    """Run ``command`` to its end (or, with ``ready``, until ``ready()`` and then SIGTERM).

    Returns the wall time (to the end, or to ``ready``), the child's CPU time (user + system,
    to the same point where /proc tells), its own peak RSS and its exit code.
    """
    with open(stderr_path or os.devnull, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, env=env or clean_env()
        )
        if ready is not None:
            while not ready():
                if process.poll() is not None:
                    raise RuntimeError(f"{command} ended with {process.returncode} before ready")
                time.sleep(0.01)
            seconds = time.perf_counter() - start
            cpu_at_ready = process_cpu_seconds(process.pid)
            process.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(process.pid, 0)
        if ready is None:
            seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu = usage.ru_utime + usage.ru_stime
    if ready is not None and cpu_at_ready is not None:
        cpu = cpu_at_ready
    return Sample(seconds, cpu, usage.ru_maxrss / 1024, process.returncode)


def imported(command: list[str], ready: Callable[[], bool] | None = None) -> set[str]:
    """The packages of `HEAVY` that ``command`` imported (from ``-X importtime``'s log)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "importtime"
        run_child(command, ready, clean_env({"PYTHONPROFILEIMPORTTIME": "1"}), log)
        names = set()
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("import time:") and "|" in line:
                names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names & set(HEAVY)


@dataclass
class Case:
    """One row: a name, how to start it, and (servers) when it counts as ready."""

    name: str
    start: Callable[[], tuple[list[str], Callable[[], bool] | None]]


def measure(case: Case, runs: int) -> tuple[float, float, float, int, set[str]]:
    """Median wall seconds, CPU seconds and MB over ``runs`` after a warm-up; the largest
    exit code; the heavy packages imported."""
    command, ready = case.start()
    run_child(command, ready)  # warm-up: page cache, .pyc files
    samples = []
    for _ in range(runs):
        command, ready = case.start()
        samples.append(run_child(command, ready))
    command, ready = case.start()
    heavy = imported(command, ready)
    return (
        statistics.median(s.seconds for s in samples),
        statistics.median(s.cpu_seconds for s in samples),
        statistics.median(s.rss_mb for s in samples),
        max(s.returncode for s in samples),
        heavy,
    )


def verb_paths() -> list[list[str]]:
    """Every verb and sub-verb of the app, e.g. ``["train"]``, ``["synth", "chest-ct"]``."""
    import typer.main

    from medsight.cli.main import app

    def walk(command: object, prefix: list[str]) -> Iterator[list[str]]:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield [*prefix, name]
            yield from walk(sub, [*prefix, name])

    return list(walk(typer.main.get_command(app), []))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="medsight-cli-start-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def serve_case(medsight: list[str], work: Path) -> Case:
    def start() -> tuple[list[str], Callable[[], bool]]:
        run = Path(tempfile.mkdtemp(dir=work))  # fresh data, registry and database each run
        port = free_port()
        command = [
            *medsight,
            "serve",
            "--port",
            str(port),
            "--data",
            str(run / "data"),
            "--registry",
            str(run / "registry"),
            "--database-url",
            f"sqlite:///{run / 'medsight.db'}",
        ]
        return command, lambda: healthz_ok(port)

    return Case("serve (to /healthz 200)", start)


def fixed(command: list[str]) -> Callable[[], tuple[list[str], None]]:
    return lambda: (command, None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("help", "verbs", "light", "serve"),
        help="only these groups of rows",
    )
    args = parser.parse_args()
    print(
        f"CPU: {cpu_summary()}, {os.cpu_count()} CPUs; load average "
        + "/".join(f"{x:.2f}" for x in os.getloadavg()),
        flush=True,
    )
    medsight = medsight_command()
    groups = set(args.only or ("help", "verbs", "light", "serve"))
    with workspace() as work:
        cases = [
            Case('python -c "import typer, rich"', fixed([PYTHON, "-c", "import typer, rich"]))
        ]
        if "help" in groups:
            cases += [
                Case("medsight --help", fixed([*medsight, "--help"])),
                Case("medsight --version", fixed([*medsight, "--version"])),
            ]
        if "verbs" in groups:
            cases += [
                Case(f"{' '.join(path)} --help", fixed([*medsight, *path, "--help"]))
                for path in verb_paths()
            ]
        if "light" in groups:
            data = work / "chest"
            subprocess.run(
                [*medsight, "--quiet", "synth", "chest-ct", str(data), "--cases", "1"],
                check=True,
                env=clean_env(),
            )
            dicom = sorted(data.rglob("*.dcm"))[0]
            cases += [
                Case("inspect ONE.dcm", fixed([*medsight, "inspect", str(dicom)])),
                Case(
                    "registry list (empty)",
                    fixed(
                        [*medsight, "registry", "list", "--registry", str(work / "empty-registry")]
                    ),
                ),
            ]
        if "serve" in groups:
            cases.append(serve_case(medsight, work))

        rows = []
        reference = 0.0
        for case in cases:
            seconds, cpu, mb, code, heavy = measure(case, args.runs)
            reference = reference or seconds
            rows.append((case.name, seconds, seconds / reference, cpu, mb, code, heavy))
            print(f"  {case.name}: {seconds:.3f} s", file=sys.stderr, flush=True)

    width = max(len(r[0]) for r in rows)
    print(f"\nmedian of {args.runs} runs after one warm-up; x = ratio to the first row")
    print(
        f"{'command':<{width}}  {'seconds':>7}  {'x':>6}  {'CPU s':>6}  {'MB':>6}  exit  "
        "heavy imports"
    )
    for name, seconds, ratio, cpu, mb, code, heavy in rows:
        shown = ", ".join(h for h in HEAVY if h in heavy) or "-"
        print(
            f"{name:<{width}}  {seconds:7.3f}  {ratio:6.1f}  {cpu:6.2f}  {mb:6.0f}  {code:>4}  "
            f"{shown}"
        )


if __name__ == "__main__":
    main()
