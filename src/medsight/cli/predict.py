"""`medsight predict RUN_DIR IMAGE`: class probabilities for one series or image."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from medsight.cli.console import console
from medsight.models.predictor import Predictor


def predict(
    run_dir: Path = typer.Argument(
        ..., help="A run folder holding model.safetensors and model.json."
    ),
    image: Path = typer.Argument(
        ..., help="A DICOM series folder or file, a NIfTI or a PNG (what `inspect` reads)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print class probabilities for one image or series, using only what RUN_DIR holds."""
    predictor = Predictor(run_dir)
    probs = predictor.predict(image)
    predicted = max(probs, key=lambda k: probs[k])
    if as_json:
        print(json.dumps({"input": str(image), "predicted": predicted, "probabilities": probs}))
        return
    table = Table(title=f"prediction for {image}")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for name, p in probs.items():
        table.add_row(f"[bold]{name}[/bold]" if name == predicted else name, f"{p:.3f}")
    console.print(table)
