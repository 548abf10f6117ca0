"""`medsight explain RUN_DIR INPUT -o OUT`: why the model predicted what it did, as files."""

from __future__ import annotations

from pathlib import Path

import typer


def explain(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors and model.json."
    ),
    input: Path = typer.Argument(
        ..., help="A DICOM series folder or file, a NIfTI or a PNG (what `inspect` reads)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for heatmap.nii.gz, overlay PNGs and explanation.json."
    ),
    method: str = typer.Option(
        "gradcam", "--method", "-m", help="gradcam, gradcampp or occlusion (slower)."
    ),
    class_name: str | None = typer.Option(
        None, "--class", help="Class to explain; default: the predicted class."
    ),
    slices: int = typer.Option(3, "--slices", help="Overlays of the most attributed slices."),
) -> None:
    """Write a heatmap aligned with INPUT, overlays and a JSON record; print the files.

    Raises:
        InputError: the run, the input, the method or the class cannot be used (see
            `explain_input`).
    """
    from medsight.cli.task_lookup import task_of_run
    from medsight.tasks.options import ExplainOptions

    options = ExplainOptions(out=out, method=method, class_name=class_name, slices=slices)
    task_of_run(run_dir).explain(run_dir, input, options)
