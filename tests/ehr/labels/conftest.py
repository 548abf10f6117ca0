"""Tiny hand-made MEDS folders for the label tests, written with the real MedsWriter."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from medsight.ehr.io.meds_dataset import MedsWriter

#: day 0 of every hand-made record
DAY0 = dt.datetime(2100, 1, 1)
#: (subject_id, day or None for a static row, code)
Row = tuple[int, float | None, str]


def day(n: float) -> dt.datetime:
    """The time ``n`` days after `DAY0`."""
    return DAY0 + dt.timedelta(days=n)


def write_meds(out: Path, rows: Sequence[Row], buckets: int = 2) -> Path:
    """A MEDS folder holding ``rows``; returns ``out``."""
    with MedsWriter(out, dataset_name="labels-test", buckets=buckets) as writer:
        writer.add(
            {
                "subject_id": [r[0] for r in rows],
                "time": [None if r[1] is None else day(r[1]) for r in rows],
                "code": [r[2] for r in rows],
            }
        )
    return out


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """Run ``medsight ARGS`` in this process, as the console script does; returns the exit code."""
    from medsight.cli.main import main

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["medsight", *args])
        with pytest.raises(SystemExit) as exit_:
            main()
        return int(exit_.value.code or 0)

    return run


@pytest.fixture
def meds_folder(tmp_path: Path) -> Callable[[Sequence[Row]], Path]:
    """Write rows as a MEDS folder under tmp_path (a new folder each call)."""
    count = 0

    def make(rows: Sequence[Row], buckets: int = 2) -> Path:  # rows: (subject, day, code)
        nonlocal count
        count += 1
        return write_meds(tmp_path / f"meds{count}", rows, buckets)

    return make


@pytest.fixture
def at_day() -> Callable[[float], dt.datetime]:
    """``at_day(n)``: the time n days after day 0 of the hand-made records."""
    return day
