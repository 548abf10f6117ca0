"""`medsight purge --older-than DAYS`: apply a retention period to the service's data.

Run on the host (like `medsight users`), against the database and data folder of
`medsight serve` (by default those of the same MEDSIGHT_* settings); safe while the service
runs. What goes and what stays is `medsight.serve.store.retention`'s: old finished jobs' inputs
and result files (the job rows stay, their results tombstoned), old series' identified
labels and re-identification records, ended login sessions and API tokens. The audit trail
is never changed; the run adds one ``purge`` record. ``--dry-run`` changes nothing and
prints the same counts.

The database is opened (and migrated) as the service opens it, but a SQLite URL must name an
existing file and the database must already hold medsight's schema: a mistyped URL never
leaves an empty database behind.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from medsight.console import console
from medsight.errors import InputError

if TYPE_CHECKING:
    from medsight.serve.store import retention
    from medsight.serve.store.database import Database

MAX_DAYS = 36_500


def parse_days(text: str) -> dt.timedelta:
    """``--older-than`` (a number of days, fractions allowed) as a retention period.

    Raises:
        InputError: ``text`` is not a number, or is negative, not finite or over 100 years.
    """
    try:
        days = float(text)
    except ValueError:
        raise InputError(f"--older-than {text!r}: give a number of days (e.g. 90)") from None
    if not math.isfinite(days) or days < 0 or days > MAX_DAYS:
        raise InputError(f"--older-than {text!r}: give a number of days from 0 to {MAX_DAYS}")
    return dt.timedelta(days=days)


def open_database(url: str) -> Database:
    """The service database at ``url`` (default: the settings'), opened and migrated.

    Raises:
        InputError: the URL is bad, names a SQLite file that does not exist, the database
            cannot be reached, or it holds no medsight schema.
    """
    from medsight.serve.settings import ServiceSettings
    from medsight.serve.store.database import Database, existing_schema_version, make_engine

    url = url or ServiceSettings().resolved_database_url()
    engine = make_engine(url)
    try:
        existing_schema_version(engine)
    finally:
        engine.dispose()
    return Database(url)


def size_text(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``3.4 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _table(report: retention.PurgeReport, keep_results: bool) -> Table:
    table = Table()
    table.add_column(
        "data older than " + report.cutoff.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    table.add_column("would go" if report.dry_run else "purged", justify="right")
    rows = [
        (f"jobs (inputs{'' if keep_results else ' and results'} deleted)", str(report.jobs)),
        ("DICOM series (identified labels erased)", str(report.series)),
        ("  of which expired while receiving", str(report.expired)),
        ("login sessions", str(report.sessions)),
        ("API tokens", str(report.tokens)),
        ("folders", str(len(report.folders) - len(report.failed))),
        ("space", size_text(report.bytes_freed)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def purge(
    older_than: str = typer.Option(
        ...,
        "--older-than",
        help="Retention period in days: purge jobs finished and series received before "
        "now minus DAYS.",
        metavar="DAYS",
        show_default=False,
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="The service's data folder (default: $MEDSIGHT_DATA_DIR, else medsight-data).",
        show_default=False,
    ),
    database_url: str = typer.Option(
        "",
        "--database-url",
        help="SQLAlchemy URL of the service database (default: $MEDSIGHT_DATABASE_URL, "
        "else medsight.db beside the data folder, as `medsight serve` places it).",
        show_default=False,
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; print what would go."),
    keep_results: bool = typer.Option(
        False,
        "--keep-results",
        help="Keep result files and results whole; delete only the de-identified inputs "
        "(and identified labels, sessions, tokens).",
    ),
) -> None:
    """Delete old studies' files and identified data; keep job rows, answers and the audit trail.

    Exits 1, naming each, when some folders could not be deleted (the next run retries).
    """
    from medsight.serve.settings import ServiceSettings
    from medsight.serve.store import retention

    period = parse_days(older_than)
    # as `medsight serve` resolves them: the default database lies beside the data folder
    overrides = {"data_dir": data, "database_url": database_url or None}
    settings = ServiceSettings.model_validate({k: v for k, v in overrides.items() if v is not None})
    db = open_database(settings.resolved_database_url())
    try:
        report = retention.purge(
            db, settings.data_dir, period, dry_run=dry_run, keep_results=keep_results
        )
    finally:
        db.close()
    if dry_run:
        console.print("Dry run: nothing was changed.")
    console.print(_table(report, keep_results))
    for path, reason in report.failed:
        typer.echo(f"could not delete {path}: {reason} (the next purge retries it)", err=True)
    if report.failed:
        raise typer.Exit(1)
