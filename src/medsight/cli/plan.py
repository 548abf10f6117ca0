"""`medsight plan DATA`: fingerprint a dataset and write the plan training will follow."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say


def plan(
    data: Path = typer.Argument(
        ...,
        help="Dataset folder holding labels.csv (or the CSV itself); segment: also a "
        "Decathlon/nnU-Net folder.",
    ),
    task: str = typer.Option(
        "classify",
        "--task",
        help="classify or segment (or a task name: image-classify, image-segment).",
    ),
    out: Path = typer.Option(Path("plan.json"), "--out", "-o", help="Where to write the plan."),
    sample: int = typer.Option(40, "--sample", min=1, help="Series read for the fingerprint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
) -> None:
    """Fingerprint DATA and write plan.json (spacing, crop, normalisation, batch, depth)."""
    from medsight.cli.task_lookup import get_task

    notes = get_task(task).plan(data, out, sample, seed)
    for note in notes:
        say(f"  - {note}")
    say(f"plan: {out}")
