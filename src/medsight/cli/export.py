"""`medsight export RUN --onnx`: an ONNX Runtime copy of the run's model for fast CPU inference.

A task whose `medsight predict` runs that copy says so with ``predicts_with_onnx = True`` (the
image tasks); the others write the copy for other runtimes and keep predicting from the
safetensors weights.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say
from medsight.errors import InputError


def export(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors + model.json."
    ),
    onnx: bool = typer.Option(False, "--onnx", help="Write RUN/model.onnx (used by predict)."),
) -> None:
    """Export the run's model as ONNX (image tasks' `medsight predict` then uses it)."""
    from medsight.cli.task_lookup import task_of_run

    if not onnx:
        raise InputError("choose a format: --onnx")
    task = task_of_run(run_dir)
    path = task.export(run_dir)
    if getattr(task, "predicts_with_onnx", False):
        say(f"wrote {path}; `medsight predict {run_dir} ...` now runs on ONNX Runtime")
    else:
        say(f"wrote {path} (ONNX Runtime can run it; `medsight predict` keeps the weights)")
