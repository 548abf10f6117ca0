import subprocess
import sys
from pathlib import Path

import pytest

import medsight


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow  # a `python -m medsight` process
def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"medsight {medsight.__version__}"


@pytest.mark.slow  # twelve `python -m medsight` processes
@pytest.mark.parametrize(
    "verb",
    [
        [],
        ["synth"],
        ["synth", "chest-ct"],
        ["demo"],
        ["predict"],
        ["deid"],
        ["plan"],
        ["inspect"],
        ["train"],
        ["evaluate"],
        ["export"],
        ["explain"],
    ],
)
def test_help_on_every_verb(verb: list[str]) -> None:
    result = run(*verb, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow  # a `python -m medsight` process
def test_predict_on_missing_run(tmp_path: Path) -> None:
    _assert_one_line_error(
        run("predict", str(tmp_path / "run"), str(tmp_path)), "model.json", "missing"
    )


@pytest.mark.slow  # a `python -m medsight` process
def test_synth_rejects_unknown_size(tmp_path: Path) -> None:
    result = run("synth", "chest-ct", str(tmp_path / "out"), "--size", "huge")
    _assert_one_line_error(result, "--size")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a `python -m medsight` process
def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--debug", "predict", str(tmp_path / "run"), str(tmp_path))
    assert result.returncode != 0 and "Traceback" in result.stderr
