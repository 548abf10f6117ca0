"""`medsight text assert FILE.csv -o OUT.csv`: the assertion context of a concept in its text,
row by row: negation, certainty, temporality and experiencer added to every input row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer

from medsight.console import say
from medsight.errors import InputError

#: the columns FILE must have
REQUIRED = ("text", "concept")
#: a CSV of sentences may hold many notes' worth of text, but not without bound
MAX_FILE_BYTES = 256 * 1024 * 1024


def assert_(
    source: Path = typer.Argument(
        ..., help="CSV with columns `text` (a sentence or a note) and `concept` (a phrase in it)."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="CSV to write: every input row and column, then negation, certainty, temporality "
        "and experiencer (predicted_<name> where FILE already has a column of that name).",
    ),
) -> None:
    """Negation (affirmed|negated), certainty (certain|uncertain), temporality
    (recent|historical|hypothetical) and experiencer (patient|other) of each row's concept.

    Nothing is written unless every row can be answered.

    Raises:
        InputError: FILE missing, binary, of an undetectable encoding or too large; a column
            missing; a row with a different number of fields, an empty text or a concept that
            does not occur in its text (the message names the row, never its text).
    """
    from medsight.runs.atomic import atomic_path
    from medsight.text.io.decode import decode_text
    from medsight.text.io.note import check_note_text
    from medsight.text.pipeline.analyze import default_pipeline
    from medsight.text.pipeline.assertion import ATTRIBUTES, assert_concept

    where = str(source)
    try:
        size = source.stat().st_size
    except OSError:
        raise InputError(f"{where}: no such file") from None
    if not source.is_file():
        raise InputError(f"{where}: not a file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{where}: {size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit")
    text = decode_text(source.read_bytes(), where)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError(f"{where}: not a readable CSV ({exc})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError(f"{where}: empty file (no header row)")
    header = [cell.strip() for cell in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{where}: no {' or '.join(repr(c) for c in missing)} column "
            f"(columns: {', '.join(header)})"
        )
    added = [f"predicted_{a}" if a in header else a for a in ATTRIBUTES]
    i_text, i_concept = header.index("text"), header.index("concept")
    pipeline = default_pipeline()
    written = [rows[0] + added]
    for number, row in enumerate(rows[1:], 1):
        place = f"{where}: row {number}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{place} has {len(row)} fields, the header has {len(header)}")
        check_note_text(row[i_text], place)
        if not row[i_concept].strip():
            raise InputError(f"{place}: empty concept")
        values = assert_concept(pipeline, row[i_text], row[i_concept], place)
        written.append(row + [values[a] for a in ATTRIBUTES])
    if len(written) == 1:
        raise InputError(f"{where}: no rows under the header")
    if out.exists() and out.is_dir():
        raise InputError(f"{out}: is a folder (give a .csv file name)")
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(written)
    answers = [dict(zip(ATTRIBUTES, r[-len(ATTRIBUTES) :], strict=True)) for r in written[1:]]
    say(
        f"asserted {len(answers)} rows: "
        f"{sum(a['negation'] == 'negated' for a in answers)} negated, "
        f"{sum(a['certainty'] == 'uncertain' for a in answers)} uncertain, "
        f"{sum(a['temporality'] != 'recent' for a in answers)} historical or hypothetical, "
        f"{sum(a['experiencer'] == 'other' for a in answers)} someone else's; wrote {out}"
    )
