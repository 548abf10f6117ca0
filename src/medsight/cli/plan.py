"""`medsight plan DATA`: fingerprint a dataset and write the plan training will follow."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import progress_bar, say
from medsight.errors import InputError
from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case, read_manifest
from medsight.imaging.data.segmentation_manifest import read_segmentation_source
from medsight.imaging.preprocess.plan import Plan, make_plan, write_plan
from medsight.imaging.tasks.segment_data import as_cases


def build_plan_for_cases(cases: list[Case], task: str, sample: int, seed: int) -> Plan:
    """Fingerprint a sample of ``cases``' series and derive the plan for ``task``."""
    if task not in ("classify", "segment"):
        raise InputError(f"--task must be classify or segment, got {task!r}")
    with progress_bar() as progress:
        bar = progress.add_task("fingerprinting", total=min(sample, len(cases)))
        fingerprint = fingerprint_cases(cases, sample, seed, on_case=lambda: progress.advance(bar))
    return make_plan(fingerprint, task)  # type: ignore[arg-type]


def plan(
    data: Path = typer.Argument(
        ...,
        help="Dataset folder holding labels.csv (or the CSV itself); segment: also a "
        "Decathlon/nnU-Net folder.",
    ),
    task: str = typer.Option("classify", "--task", help="classify or segment."),
    out: Path = typer.Option(Path("plan.json"), "--out", "-o", help="Where to write the plan."),
    sample: int = typer.Option(40, "--sample", min=1, help="Series read for the fingerprint."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
) -> None:
    """Fingerprint DATA and write plan.json (spacing, crop, normalisation, batch, depth)."""
    cases = (
        as_cases(read_segmentation_source(data).cases) if task == "segment" else read_manifest(data)
    )
    result = build_plan_for_cases(cases, task, sample, seed)
    write_plan(out, result)
    for note in result.notes:
        say(f"  - {note}")
    say(f"plan: {out}")
