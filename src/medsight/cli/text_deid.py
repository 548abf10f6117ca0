"""`medsight text deid IN OUT`: de-identify clinical notes (names, dates, ages over 89,
identifiers, phone/fax, e-mail, URLs, addresses, locations, hospitals) with keyed surrogates
or tags. Nothing from a note is printed or logged: only counts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from medsight.console import STATE, console, progress_bar, say
from medsight.errors import InputError

KEY_ENV = "MEDSIGHT_DEID_KEY"
MIN_KEY_CHARS = 16
MODES = ("surrogate", "tag")


def deid(
    source: Path = typer.Argument(
        ...,
        help=(
            "A .txt note, a folder of them, or a notes table (.csv/.tsv/.jsonl/.parquet with "
            "note_id, subject_id, time, text); FHIR .json, HL7 .hl7 and DICOM SR .dcm work too."
        ),
    ),
    out: Path = typer.Argument(
        ...,
        help=(
            "Output folder: the de-identified notes under the same file names (a table in the "
            "same format), spans.jsonl (offsets and types of every masked span) and "
            "summary.json (counts). Must lie outside IN; an earlier output is replaced."
        ),
    ),
    key: str | None = typer.Option(
        None,
        "--key",
        help=(
            f"Secret (at least {MIN_KEY_CHARS} characters) the surrogates and date offsets "
            f"are keyed by; default: --key-file, else ${KEY_ENV}. Use the same key as for the "
            "EHR and imaging de-identification, so a patient's notes shift with their records."
        ),
        show_default=False,
    ),
    key_file: Path | None = typer.Option(
        None,
        "--key-file",
        help="Read the key from this file (first line), so it stays out of the process list.",
        show_default=False,
    ),
    key_env: str = typer.Option(KEY_ENV, "--key-env", help="Environment variable holding the key."),
    mode: str = typer.Option(
        "surrogate",
        "--mode",
        help=(
            "surrogate: keyed fake names/ids/places, dates shifted by the patient's offset, "
            "ages over 89 as 90+; tag: [NAME], [DATE], ..."
        ),
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help=(
            "A text-ner run trained with --labels phi: its spans are masked too, in addition "
            "to the rules' (recall first)."
        ),
        show_default=False,
    ),
) -> None:
    """De-identify clinical notes: rules (and optionally a trained PHI tagger), then keyed
    surrogates or tags.

    A table's subject_id becomes the pseudonymous id the EHR de-identification gives the same
    patient under the same key, and its time moves by the patient's date offset; other
    columns are kept as they stand. note_id and file names are kept (they must not hold PHI).
    """
    from medsight.ehr.deid.patient_keys import patient_keys
    from medsight.text.deid.deidentify_source import SUMMARY_NAME, deidentify_source

    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    secret = _key(key, key_file, key_env)
    extra = _tagger_spans(model) if model is not None else None
    with progress_bar() as progress:
        task = progress.add_task("de-identifying", total=None)
        summary = deidentify_source(
            source,
            out,
            key=secret,
            mode=mode,
            subject_id_of=lambda identifier: patient_keys(secret, identifier).subject_id,
            extra_spans_of=extra,
            model=str(model) if model is not None else None,
            on_note=lambda done: progress.update(task, completed=done),
        )
    if not STATE.quiet:
        table = Table(title="medsight text deid", show_header=False)
        table.add_row("notes", str(summary.notes))
        for phi_type, count in sorted(summary.per_type.items()):
            table.add_row(phi_type, str(count))
        table.add_row("seconds", f"{summary.seconds:.1f}")
        console.print(table)
    say(f"de-identified notes, spans.jsonl and {SUMMARY_NAME}: {out}")


def _key(key: str | None, key_file: Path | None, key_env: str) -> str:
    """The key from --key, --key-file or the environment; a random one (with a warning) if none."""
    if key is not None and key_file is not None:
        raise InputError("--key and --key-file: give one of them")
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise InputError(f"--key-file {key_file}: cannot be read as text") from None
        key = lines[0].strip() if lines else ""
        where = f"--key-file {key_file}"
    elif key is not None:
        where = "--key"
    else:
        key = os.environ.get(key_env) or None
        where = f"${key_env}"
    if key is None:
        typer.echo(  # shown even under --quiet: the user may expect linkable output
            f"warning: no --key, --key-file or ${key_env} given: using a random key, so "
            "surrogates and date offsets will not match later runs or the EHR records",
            err=True,
        )
        return secrets.token_urlsafe(32)
    if len(key) < MIN_KEY_CHARS:
        raise InputError(f"{where}: a key needs at least {MIN_KEY_CHARS} characters")
    return key


def _tagger_spans(run: Path) -> Callable[[str], list[tuple[int, int, str]]]:
    """The spans function of a ``text-ner`` run trained on PHI (``--labels phi``)."""
    from medsight.cli.task_lookup import task_of_run
    from medsight.text.deid.phi_span import PHI_TYPES
    from medsight.text.tasks.ner_predict import LoadedTagger

    task = task_of_run(run)
    if task.name != "text-ner":
        raise InputError(f"--model {run}: a {task.name} run, not a text-ner PHI tagger")
    loaded = task.load(run)
    if not isinstance(loaded, LoadedTagger) or loaded.contract.labels != "phi":
        raise InputError(f"--model {run}: not trained on PHI spans (train with --labels phi)")

    def spans(text: str) -> list[tuple[int, int, str]]:
        found = loaded.tag_text(text).entities
        # a type the rules do not know is still masked (recall first), as a name
        return [(e.start, e.end, e.type if e.type in PHI_TYPES else "NAME") for e in found]

    return spans
