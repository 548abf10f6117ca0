"""`medsight deid IN OUT`: de-identify a DICOM folder (PS3.15 Basic Profile, fail closed)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import cast

import typer
from rich.table import Table

from medsight.console import STATE, console, progress_bar, say
from medsight.errors import InputError

KEY_ENV = "MEDSIGHT_DEID_KEY"
#: `medsight.imaging.io.deid.policy.MIN_KEY_CHARS`, written out so that --help imports no
#: pydicom (tests/cli/test_cli_start.py checks that they agree)
MIN_KEY_CHARS = 16


def deid(
    in_dir: Path = typer.Argument(
        ..., help="Folder of DICOM files (read recursively, never modified)."
    ),
    out_dir: Path = typer.Argument(
        ...,
        help="Output folder: de-identified copies mirroring IN's layout, plus deid_summary.json.",
    ),
    key: str | None = typer.Option(
        None,
        "--key",
        help=(
            f"Secret (at least {MIN_KEY_CHARS} characters) for the keyed hashes of UIDs, "
            f"Patient ID and date offsets; default: ${KEY_ENV}. The same key gives the same "
            "output UIDs in every run, so later exports stay linked; keep it as safe as the "
            "originals. Without one, a random key is used and nothing links to later runs."
        ),
        show_default=False,
    ),
    dates: str = typer.Option(
        "remove",
        "--dates",
        help=(
            "remove: Basic Profile (dates emptied or replaced); shift: move every DA/DT date "
            "by a per-patient offset of 1-10 years back, keeping intervals (times kept); "
            "keep: keep dates and times."
        ),
    ),
    keep_patient_characteristics: bool = typer.Option(
        False,
        "--keep-patient-characteristics",
        help=(
            "Retain Patient Characteristics Option (PS3.15 E.3.7): keep sex, age, size, "
            "weight, ethnic group, smoking and pregnancy status for subgroup analysis."
        ),
    ),
    quarantine: Path | None = typer.Option(
        None,
        "--quarantine",
        help=(
            "Where originals that may carry burned-in text are held back, with reasons.jsonl; "
            "default: OUT-quarantine beside OUT. They still contain patient data."
        ),
        show_default=False,
    ),
) -> None:
    """De-identify DICOM files: PS3.15 Basic Application Level Confidentiality Profile.

    Every attribute of PS3.15 Table E.1-1 is removed, emptied, replaced by a dummy or
    replaced by a keyed-hash UID, at any depth of nesting; private attributes, curves and
    overlays are removed. Files with burned-in annotation, or of SOP classes that often carry
    it (secondary capture, ultrasound, photographs, video, PDF) unless BurnedInAnnotation is
    NO, are not written to OUT: their originals go to the quarantine folder for review.
    Non-DICOM files are skipped. Exits 1 if any file could not be processed.
    """
    from medsight.imaging.io.deid import (
        DATES_MODES,
        DatesMode,
        DeidPolicy,
        default_quarantine_dir,
        deidentify_tree,
    )
    from medsight.imaging.io.deid.tree import SUMMARY_NAME

    if dates not in DATES_MODES:
        raise InputError(f"--dates must be one of {', '.join(DATES_MODES)}, got {dates!r}")
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    key = key or os.environ.get(KEY_ENV) or None
    if key is None:
        key = secrets.token_urlsafe(32)
        typer.echo(  # shown even under --quiet: the user may expect linkable output
            f"warning: no --key or ${KEY_ENV} given: using a random key, so the output's UIDs "
            "and pseudonyms will not be linkable to later runs",
            err=True,
        )
    elif len(key) < MIN_KEY_CHARS:
        raise InputError(f"--key / ${KEY_ENV}: a key needs at least {MIN_KEY_CHARS} characters")
    policy = DeidPolicy(
        key=key,
        dates=cast(DatesMode, dates),  # checked against DATES_MODES above
        keep_patient_characteristics=keep_patient_characteristics,
    )
    held_dir = quarantine or default_quarantine_dir(out_dir)
    with progress_bar() as progress:
        task = progress.add_task("de-identifying", total=None)
        summary = deidentify_tree(
            in_dir,
            out_dir,
            policy,
            quarantine_dir=held_dir,
            on_file=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if not STATE.quiet:
        table = Table(title="medsight deid", show_header=False)
        for label, value in summary.table_rows():
            table.add_row(label, value)
        console.print(table)
    for issue in summary.errors:
        typer.echo(f"error: {issue.path}: {issue.reason}", err=True)
    say(f"summary: {out_dir / SUMMARY_NAME}")
    if summary.files_quarantined:
        say(f"quarantined originals (still identifiable): {held_dir}")
    if summary.files_errored:
        raise typer.Exit(code=1)
