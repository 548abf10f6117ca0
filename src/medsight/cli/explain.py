"""`medsight explain RUN_DIR INPUT -o OUT`: why the model predicted what it did, as files."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say
from medsight.imaging.explain.explain_run import explain_input


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
    record = explain_input(run_dir, input, out, method, class_name, slices)
    probability = record["probabilities"][record["class_name"]]
    say(
        f"{record['method']} explanation of {record['class_name']} "
        f"(p={probability:.3f}, predicted {record['predicted']})"
    )
    for name in record["files"]:
        print(out / name)
