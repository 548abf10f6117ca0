"""`medsight ehr import|label`: hospital exports to a MEDS folder, and task labels from it."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say

app = typer.Typer(help="Electronic health records: import to MEDS, make task labels.")


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="The export: a file or folder (see --from)."),
    out: Path = typer.Option(..., "--out", "-o", help="MEDS folder to write (replaced when whole)."),
    kind: str = typer.Option(
        ..., "--from", help="events-csv, meds, mimic3, mimic4, eicu, omop or fhir."
    ),
    splits: Path = typer.Option(
        None, "--splits", help="events-csv: CSV of subject_id,split (train/tuning/held_out)."
    ),
    seed: int = typer.Option(0, "--seed", help="Key of the default 80/10/10 subject split."),
) -> None:
    """Convert SOURCE to a validated MEDS dataset, streaming (bounded memory)."""
    from medsight.ehr.io.importers import import_source

    summary = import_source(source, out, kind, splits=splits, seed=seed)
    say(
        f"wrote {out}: {summary['subjects']} subjects, {summary['events']} events, "
        f"{summary['codes']} codes"
    )


@app.command("label")
def label(
    data: Path = typer.Argument(..., help="A MEDS folder (from `medsight ehr import`)."),
    task: str = typer.Option(
        ...,
        "--task",
        help="death, readmission or first-code; or a JSON/YAML file holding the whole spec.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Labels file to write (.parquet or .csv)."),
    within: int = typer.Option(365, "--within", min=1, help="Outcome window in days."),
    codes: str = typer.Option(
        "", "--codes", help="first-code: code prefixes, comma-separated (e.g. ICD10CM//E11.2)."
    ),
    at: str = typer.Option(
        "each-discharge",
        "--at",
        help="Prediction times: each-discharge, each-visit, date:YYYY-MM-DD or age:YEARS.",
    ),
    min_history_days: int = typer.Option(
        0, "--min-history-days", min=0, help="Drop prediction times with less history than this."
    ),
    min_events: int = typer.Option(
        1, "--min-events", min=0, help="Drop prediction times with fewer earlier events."
    ),
) -> None:
    """Write MEDS labels (subject_id, prediction_time, boolean_value) for a built-in task."""
    from medsight.ehr.labels.templates import label_spec_from_options, write_labels

    spec = label_spec_from_options(
        task,
        within_days=within,
        codes=[c for c in codes.split(",") if c],
        at=at,
        min_history_days=min_history_days,
        min_events=min_events,
    )
    summary = write_labels(data, spec, out)
    say(
        f"wrote {out}: {summary['rows']} prediction times of {summary['subjects']} subjects, "
        f"{summary['positives']} positive ({summary['excluded']} excluded)"
    )
