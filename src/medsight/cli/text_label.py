"""`medsight text label REPORTS -o OUT [--gold labels.json]`: per-finding labels of radiology
reports (present / absent / uncertain / not mentioned) and, against reference labels, their
agreement per finding with bootstrap CIs."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import format_estimate, say


def label(
    reports: Path = typer.Argument(
        ...,
        help="Reports: a .txt file, a folder of them, a notes table (.csv/.jsonl/.parquet), "
        "FHIR JSON, HL7 v2 (.hl7) or DICOM SR.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for labels.csv (and agreement.*)."),
    gold: Path | None = typer.Option(
        None,
        "--gold",
        help="Reference labels {report_id: {finding: label}} (radlabels' labels.json): "
        "writes agreement.json and agreement.html.",
    ),
    examples: int = typer.Option(
        5,
        "--examples",
        min=0,
        help="With --gold: example disagreements per finding, with short report snippets "
        "(0 writes no report text).",
    ),
    n_boot: int = typer.Option(1000, "--n-boot", min=1, help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
) -> None:
    """Label each report for the 48 chest-radiograph findings; compare with --gold labels."""
    from medsight.text.io.read_notes import read_notes
    from medsight.text.labeller.label_run import label_notes

    summary = label_notes(
        read_notes(reports), out, gold, examples=examples, n_boot=n_boot, seed=seed
    )
    say(f"labelled {summary.n_reports} reports: {out / 'labels.csv'}")
    if summary.agreement is None:
        return
    overall = summary.agreement["overall"]
    say(
        f"agreement with {gold.name if gold else ''} on {summary.agreement['n_reports']} reports "
        f"(where the reference labels a finding): {format_estimate(overall['accuracy_mentioned'])}"
        f", kappa {format_estimate(overall['kappa'])}"
    )
    if summary.n_reference_unmatched:
        say(f"{summary.n_reference_unmatched} reference reports are not among REPORTS (not scored)")
    say(f"per finding: {out / 'agreement.html'} and {out / 'agreement.json'}")
