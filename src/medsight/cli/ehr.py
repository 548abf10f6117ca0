"""`medsight ehr import|label`: hospital exports to a MEDS folder, and task labels from it."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import say

app = typer.Typer(help="Electronic health records: import to MEDS, make task labels.")


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="The export: a file or folder (see --from)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="MEDS folder to write (replaced when whole)."
    ),
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
        None,
        "--task",
        help="death, readmission, first-code or in-hospital-death; or a JSON/YAML file "
        "holding the whole spec.",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Labels file to write (.parquet or .csv)."),
    within: int = typer.Option(365, "--within", min=1, help="Outcome window in days."),
    codes: str = typer.Option(
        "", "--codes", help="first-code: code prefixes, comma-separated (e.g. ICD10CM//E11.2)."
    ),
    at: str = typer.Option(
        "each-discharge",
        "--at",
        help="Prediction times: each-discharge, each-visit, each-admission (inpatient), "
        "date:YYYY-MM-DD or age:YEARS.",
    ),
    min_history_days: int = typer.Option(
        0, "--min-history-days", min=0, help="Drop prediction times with less history than this."
    ),
    min_events: int = typer.Option(
        1, "--min-events", min=0, help="Drop prediction times with fewer earlier events."
    ),
    censor: bool = typer.Option(
        True,
        "--censor/--no-censor",
        help="Drop prediction times whose records end before the window closes (label "
        "unknown); --no-censor takes the records as complete.",
    ),
    hours_after: float = typer.Option(
        0.0,
        "--hours-after",
        min=0,
        help="Predict this many hours after each time --at names (e.g. 48 with each-admission).",
    ),
    labels: Path = typer.Option(
        None,
        "--labels",
        help="Check your own labels file (parquet/CSV: subject_id, prediction_time, "
        "boolean_value) against DATA instead; with -o, write it in the MEDS label schema.",
    ),
) -> None:
    """Write MEDS labels (subject_id, prediction_time, boolean_value) for a built-in task,
    or check your own labels file against DATA (--labels)."""
    from medsight.errors import InputError

    if labels is not None:
        from medsight.ehr.io.meds_dataset import open_meds
        from medsight.ehr.labels.label_file import read_labels, write_label_table

        table = read_labels(labels, open_meds(data))
        if out is not None:
            write_label_table(table, out)
        positives = sum(table.column("boolean_value").to_pylist())
        subjects = len(set(table.column("subject_id").to_pylist()))
        where = f"wrote {out}" if out is not None else f"{labels} is valid"
        counts = f"{table.num_rows} prediction times of {subjects} subjects"
        say(f"{where}: {counts}, {positives} positive")
        return
    if task is None or out is None:
        raise InputError("ehr label: give --task and -o LABELS (or --labels FILE to check yours)")
    from medsight.ehr.labels.label_spec import label_spec_from_options
    from medsight.ehr.labels.templates import write_labels

    spec = label_spec_from_options(
        task,
        within_days=within,
        codes=[c for c in codes.split(",") if c],
        at=at,
        min_history_days=min_history_days,
        min_events=min_events,
        censor=censor,
        hours_after=hours_after,
    )
    summary = write_labels(data, spec, out)
    reasons = ", ".join(f"{n} {reason}" for reason, n in summary["excluded_by"].items())
    say(
        f"wrote {out}: {summary['rows']} prediction times of {summary['subjects']} subjects, "
        f"{summary['positives']} positive ({summary['excluded']} excluded"
        + (f": {reasons})" if reasons else ")")
    )
