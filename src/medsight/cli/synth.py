"""`medsight synth ...`: write the embedded synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.console import progress_bar, say
from medsight.errors import InputError

app = typer.Typer(help="Generate synthetic demo datasets.", no_args_is_help=True)
#: `medsight.ehr.synth.formats.FORMATS`, written out so that --help imports no numpy or
#: pyarrow (tests/cli/test_cli_start.py checks that they agree)
EHR_FORMATS = ("meds", "fhir", "events-csv")


@app.command("chest-ct")
def chest_ct(
    out: Path = typer.Argument(
        ..., help="Output folder (replaced once the new dataset is complete)."
    ),
    cases: int = typer.Option(300, "--cases", min=1, help="Number of scans."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed; the same seed writes byte-identical files."
    ),
    size: str = typer.Option(
        "small", "--size", help="small (48x128x128) or full (512x512 slices)."
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes (0 = all cores)."),
) -> None:
    """Write a synthetic chest-CT cohort: DICOM series, NIfTI lung/nodule masks, labels.csv."""
    from medsight.imaging.synth.chest_ct import SIZES, write_chest_ct_dataset

    if size not in SIZES:
        raise InputError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    with progress_bar() as progress:
        task = progress.add_task("generating cases", total=cases)
        labels = write_chest_ct_dataset(
            out, cases, seed, size, workers=workers or None, on_case=lambda: progress.advance(task)
        )
    say(f"wrote {cases} cases; manifest: {labels}")


@app.command("ehr")
def ehr(
    out: Path = typer.Argument(
        ..., help="Output folder (replaced once the new dataset is complete)."
    ),
    patients: int = typer.Option(2000, "--patients", min=1, help="Number of patients."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed; the same seed writes byte-identical files."
    ),
    fmt: str = typer.Option("meds", "--format", help=f"Output format: {', '.join(EHR_FORMATS)}."),
) -> None:
    """Write a synthetic type 2 diabetes cohort (MEDS, FHIR R4 Bulk NDJSON or an events CSV)."""
    from medsight.ehr.synth import OUTCOME_PREFIXES, OUTCOME_WINDOW_DAYS, PREDICTION_DATE
    from medsight.ehr.synth.formats import write_synthetic_ehr

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    with progress_bar() as progress:
        task = progress.add_task("simulating patients", total=patients)
        write_synthetic_ehr(out, patients, seed, fmt, on_chunk=lambda n: progress.advance(task, n))
    say(f"wrote {patients} patients ({fmt}) to {out}")
    say(
        f"default task: first of {', '.join(OUTCOME_PREFIXES)} within {OUTCOME_WINDOW_DAYS} "
        f"days after {PREDICTION_DATE}"
    )


@app.command("notes")
def notes(
    out: Path = typer.Argument(
        ..., help="Output folder (replaced once the new corpus is complete)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed; the same seed writes byte-identical files."
    ),
    reports: int = typer.Option(
        300,
        "--reports",
        min=0,
        help="Radiology reports: one per case of `synth chest-ct --cases N` with this seed.",
    ),
    discharge: int = typer.Option(
        300,
        "--discharge",
        min=0,
        help="Discharge summaries, for the first patients of `synth ehr` with this seed.",
    ),
    feedback: int = typer.Option(300, "--feedback", min=0, help="Patient-feedback comments."),
) -> None:
    """Write a synthetic clinical-text corpus with gold annotations: chest-CT reports, discharge
    summaries with planted PHI, feedback comments with sentiment (JSONL, notes.csv, assert.csv)."""
    from medsight.cli.notes_cohorts import chest_ct_cases, ehr_patients
    from medsight.text.synth.notes_corpus import write_notes_corpus

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    manifest = write_notes_corpus(
        out,
        seed,
        cases=chest_ct_cases(reports, seed) if reports else [],
        patients=ehr_patients(discharge, seed) if discharge else [],
        feedback=feedback,
    )
    counts = manifest["counts"]
    say(
        f"wrote {counts['radiology']} radiology reports, {counts['discharge']} discharge "
        f"summaries, {counts['feedback']} feedback comments and {counts['assert']} assertion "
        f"rows to {out}"
    )
