"""`medsight evaluate RUN [--data TEST]`: metrics with CIs, calibration, subgroups, report."""

from __future__ import annotations

from pathlib import Path

import typer


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder made by `medsight train` or `demo`."),
    data: Path = typer.Option(
        None, "--data", help="External test manifest (default: the run's test split)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/eval)."),
    sensitivity: float = typer.Option(
        0.0,
        "--sensitivity",
        min=0.0,
        max=1.0,
        help="Operating point at this validation sensitivity (default: Youden).",
    ),
    coverage: float = typer.Option(
        0.90, "--coverage", min=0.5, max=0.999, help="Conformal set coverage."
    ),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap resamples per CI."),
    tolerance_mm: float = typer.Option(
        2.0, "--tolerance-mm", min=0.0, help="Segmentation: surface Dice tolerance (mm)."
    ),
    overlap: float = typer.Option(
        0.25, "--overlap", min=0.0, max=0.9, help="Segmentation: sliding-window overlap."
    ),
    mirror: bool = typer.Option(False, "--mirror", help="Segmentation: mirror TTA."),
) -> None:
    """Evaluate a run on its test split (or --data): metrics with CIs and a report.

    Classification: calibration, operating point, subgroups, conformal sets, Grad-CAM.
    Segmentation: Dice, IoU, HD95, surface Dice, volumes, lesion detection, worst cases.
    """
    from medsight.cli.task_lookup import task_of_run
    from medsight.tasks.options import EvaluateOptions

    options = EvaluateOptions(
        out=out or run_dir / "eval",
        data=data,
        sensitivity=sensitivity or None,
        coverage=coverage,
        n_boot=n_boot,
        tolerance_mm=tolerance_mm,
        overlap=overlap,
        mirror=mirror,
    )
    task_of_run(run_dir).evaluate(run_dir, options)
