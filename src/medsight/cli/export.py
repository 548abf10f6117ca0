"""`medsight export RUN --onnx`: an ONNX Runtime copy of the run's model for fast CPU inference."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say
from medsight.errors import InputError
from medsight.tasks import task_of_run


def export(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors + model.json."
    ),
    onnx: bool = typer.Option(False, "--onnx", help="Write RUN/model.onnx (used by predict)."),
) -> None:
    """Export the run's model; `medsight predict` then uses ONNX Runtime."""
    if not onnx:
        raise InputError("choose a format: --onnx")
    path = task_of_run(run_dir).export(run_dir)
    say(f"wrote {path}; `medsight predict {run_dir} ...` now runs on ONNX Runtime")
