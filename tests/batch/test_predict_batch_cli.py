"""`medsight predict RUN INPUT... --engine local --jobs N -o OUT` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from batch_kit import BAD, write_classify_run

pytestmark = pytest.mark.slow  # each call is a `python -m medsight` process


def medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=600
    )


def test_batch_prints_its_summary_and_a_rerun_skips_what_is_done(
    batch_archive: list[Path], tmp_path: Path
) -> None:
    run = write_classify_run(tmp_path / "run")
    inputs = [str(p) for p in batch_archive[:4]]  # three series, then the corrupt one
    out = tmp_path / "out"
    first = medsight("predict", str(run), *inputs, "--jobs", "2", "-o", str(out))
    assert first.returncode == 1, first.stderr  # a failed input: the batch says so
    assert "4 inputs: 3 done, 0 skipped (already done), 1 failed" in first.stdout
    assert f"input {BAD[0] + 1} failed:" in first.stdout and "Traceback" not in first.stderr
    again = medsight(
        "predict", str(run), *inputs[:3], "--engine", "local", "--json", "-o", str(out)
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, 3, 0)
    assert summary == json.loads((out / "batch_summary.json").read_text())


def test_batch_without_an_output_folder_is_one_line_error(
    batch_archive: list[Path], tmp_path: Path
) -> None:
    run = write_classify_run(tmp_path / "run")
    result = medsight("predict", str(run), str(batch_archive[0]), "--engine", "local")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: batch prediction writes one folder per input: give --out FOLDER"
    )
