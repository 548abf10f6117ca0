"""The `medsight` command starts light: --help, --version, every verb's --help and the verbs
that need no model import no torch (nor Lightning, MONAI, FastAPI on the help paths), and the
verbs that dispatch to a task still find it once the modalities are registered lazily.

Each command runs in a fresh interpreter (the test process has imported torch long ago) and
reports which heavy packages it left in ``sys.modules``. Timings live in
``bench/cli_start.py``, not here.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

import medsight.cli
from medsight.cli.main import app

#: run ``main()`` once per argv given, in this fresh interpreter; print, as JSON on the last
#: line, each run's exit code and the watched packages it imported (first imported there)
_CHILD = """
import contextlib, io, json, sys
from medsight.cli.main import main
watch, runs, reports = json.loads(sys.argv[1]), json.loads(sys.argv[2]), []
for argv in runs:
    before = {n for n in watch if n in sys.modules}
    sys.argv, code = ["medsight", *argv], 0
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    fresh = [n for n in watch if n in sys.modules and n not in before]
    reports.append({"code": code, "imported": fresh})
print(json.dumps(reports))
"""
#: never imported by --help, --version or a verb's --help
HELP_FORBIDDEN = ("torch", "lightning", "monai", "fastapi", "spacy", "scipy", "numpy")
#: never imported by the verbs that need no model
LIGHT_FORBIDDEN = ("torch", "lightning", "monai", "spacy")


def run_medsight(
    *runs: list[str], watch: tuple[str, ...] = ()
) -> tuple[list[tuple[int, list[str]]], str]:
    """``medsight ARGV`` for each of ``runs``, in turn, in one fresh interpreter.

    Returns:
        Per run its exit code and which of ``watch`` it imported first; and the stderr.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(watch), json.dumps(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout.strip().splitlines()[-1])
    return [(r["code"], r["imported"]) for r in reports], done.stderr


def verb_paths() -> list[list[str]]:
    """Every verb and sub-verb of the app: ``["train"]``, ``["synth"]``, ``["synth", "ehr"]``..."""

    def walk(command: object, prefix: list[str]) -> list[list[str]]:
        paths = []
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths += [[*prefix, name], *walk(sub, [*prefix, name])]
        return paths

    return walk(typer.main.get_command(app), [])


def test_every_verb_is_enumerated() -> None:
    paths = {" ".join(p) for p in verb_paths()}
    assert {
        "train",
        "serve",
        "worker",
        "synth chest-ct",
        "text deid",
        "registry list",
        "users add",
    } <= paths


HELP_RUNS = [["--help"], ["--version"], *([*path, "--help"] for path in verb_paths())]


@pytest.fixture(scope="module")
def help_reports() -> dict[str, tuple[int, list[str]]]:
    """Every help run in one interpreter: a run is charged with what it imported first."""
    reports, stderr = run_medsight(*HELP_RUNS, watch=HELP_FORBIDDEN)
    return {" ".join(args): report for args, report in zip(HELP_RUNS, reports, strict=True)}


@pytest.mark.parametrize("command", [" ".join(args) for args in HELP_RUNS])
def test_help_imports_no_heavy_package(
    command: str, help_reports: dict[str, tuple[int, list[str]]]
) -> None:
    assert help_reports[command] == (0, [])


def test_synth_and_inspect_import_no_torch(tmp_path: Path) -> None:
    data = tmp_path / "chest"
    synth = ["--quiet", "synth", "chest-ct", str(data), "--cases", "2", "--workers", "1"]
    (report,), stderr = run_medsight(synth, watch=LIGHT_FORBIDDEN)
    assert report == (0, []), stderr
    one_slice = sorted(data.rglob("*.dcm"))[0]
    (report,), stderr = run_medsight(["inspect", str(one_slice)], watch=LIGHT_FORBIDDEN)
    assert report == (0, []), stderr


def test_deid_users_audit_and_registry_import_no_torch(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "notes.txt").write_text("not DICOM")
    url = f"sqlite:///{tmp_path / 'medsight.db'}"
    runs = [
        ["--quiet", "deid", str(source), str(tmp_path / "out")],
        ["users", "add", "alice", "--role", "admin", "--database-url", url],
        ["users", "list", "--database-url", url],
        ["audit", "verify", "--database-url", url],
        ["audit", "export", "--database-url", url, "--out", str(tmp_path / "audit.jsonl")],
        ["registry", "list", "--registry", str(tmp_path / "registry")],
    ]
    reports, stderr = run_medsight(*runs, watch=(*LIGHT_FORBIDDEN, "fastapi"))
    assert reports == [(0, [])] * len(runs), stderr
    assert (tmp_path / "audit.jsonl").read_text().count("\n") >= 1  # the user's creation


def test_dispatching_verbs_find_their_tasks(tmp_path: Path) -> None:
    """From a fresh process (nothing registered yet): `train` finds its task by name and
    `evaluate` the task of a run; each then reports what is wrong with its input."""
    missing = tmp_path / "missing"
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"task": "image-classify"}))
    reports, stderr = run_medsight(
        ["train", str(missing), "--task", "text-ner", "-o", str(tmp_path / "new")],
        ["evaluate", str(run)],
    )
    assert "unknown task" not in stderr
    assert reports[0][0] == 2
    assert str(missing) in stderr  # train got as far as reading its data
    assert reports[1][0] in (1, 2)  # the run holds no model: the task says so


def test_verbs_look_tasks_up_through_cli_task_lookup() -> None:
    """A verb importing `get_task`/`task_of_run` from `medsight.tasks` itself would find no
    task in a fresh process: only `cli.task_lookup` registers the modalities."""
    cli = Path(medsight.cli.__file__).parent
    offenders = []
    for path in sorted(cli.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "medsight.tasks"
            ):
                names = {alias.name for alias in node.names}
                if names & {"get_task", "task_of_run"}:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == [path for path in offenders if path.startswith("task_lookup.py")]


def test_help_constants_agree_with_their_sources() -> None:
    """Constants written out in the verbs (so --help imports nothing heavy) match the source."""
    from medsight.cli import deid, synth
    from medsight.ehr.synth.formats import FORMATS
    from medsight.imaging.io.deid.policy import MIN_KEY_CHARS

    assert deid.MIN_KEY_CHARS == MIN_KEY_CHARS
    assert tuple(FORMATS) == synth.EHR_FORMATS
