"""Shared terminal state: the --quiet/--debug flags, a rich console, and progress bars.

Used by the CLI and by task plug-ins that report progress; imports nothing of medsight."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@dataclass
class CliState:
    quiet: bool = False
    debug: bool = False


STATE = CliState()
console = Console(highlight=False)
#: progress goes to stderr so that stdout stays machine-readable (`--json`)
progress_console = Console(highlight=False, stderr=True)


def say(message: str) -> None:
    """Print a status line unless --quiet."""
    if not STATE.quiet:
        console.print(message)


@contextlib.contextmanager
def progress_bar() -> Iterator[Progress]:
    """A rich progress bar with elapsed time and ETA, disabled under --quiet."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(compact=True),
        console=progress_console,
        disable=STATE.quiet,
        transient=True,
    ) as progress:
        yield progress


def stage_ticker(progress: Progress) -> Callable[[str, int], Callable[[], None]]:
    """The ``on_stage`` hook of the prepare functions: a bar per stage, a tick per item."""

    def stage(name: str, total: int) -> Callable[[], None]:
        bar = progress.add_task(name, total=total)
        return lambda: progress.advance(bar)

    return stage


def format_estimate(ci: dict) -> str:
    """``{"point", "low", "high"}`` as ``0.912 (95% CI 0.881-0.934)`` (``n/a`` when undefined)."""
    if ci["point"] is None:
        return "n/a"
    if ci["low"] is None:
        return f"{ci['point']:.3f}"
    # "to" where a bound is negative (a difference): "-0.323--0.121" would misread
    sep = " to " if min(ci["low"], ci["high"]) < 0 else "-"
    return f"{ci['point']:.3f} (95% CI {ci['low']:.3f}{sep}{ci['high']:.3f})"
