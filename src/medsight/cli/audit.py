"""`medsight audit verify|export`: check the audit trail's hash chain and hand its records out.

Run on the host against the service's database (by default the one `medsight serve` uses,
from the same MEDSIGHT_* settings). Both commands only read: the database is opened without
migrating and must already be at this medsight's schema version, so an auditor's read-only
credentials are enough and a mistyped ``--database-url`` never leaves an empty database
behind that would then "verify" as an intact, empty trail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from medsight.console import say
from medsight.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(
    help="Verify and export the service's tamper-evident audit trail.", no_args_is_help=True
)
URL_OPTION = typer.Option(
    "",
    "--database-url",
    help=(
        "SQLAlchemy URL of the service database (sqlite:///PATH or postgresql://...); "
        "default: $MEDSIGHT_DATABASE_URL, else medsight.db beside $MEDSIGHT_DATA_DIR."
    ),
    show_default=False,
)


def parse_since(text: str) -> dt.datetime:
    """``text`` (an ISO 8601 date or date-time; UTC when it names no zone) as aware UTC.

    Raises:
        InputError: ``text`` is not an ISO 8601 date or date-time.
    """
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--since {text!r}: not an ISO 8601 date or date-time "
            "(e.g. 2026-03-01 or 2026-03-01T08:00:00+01:00)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@contextlib.contextmanager
def reading(url: str) -> Iterator[Session]:
    """A session reading one snapshot of the service database at ``url`` (default: settings).

    PostgreSQL reads under REPEATABLE READ, so records the running service appends meanwhile
    are neither half-seen by `verify_chain` nor mixed into an export; SQLite's read
    transaction is a snapshot already.

    Raises:
        InputError: the URL is bad, the database cannot be reached, holds no medsight schema,
            or is at another schema version than this medsight.
    """
    from sqlalchemy.orm import Session

    from medsight.serve.settings import ServiceSettings
    from medsight.serve.store.database import SCHEMA_VERSION, existing_schema_version, make_engine

    url = url or ServiceSettings().resolved_database_url()
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        version = existing_schema_version(engine)
        reader = engine
        if engine.dialect.name == "postgresql":
            reader = engine.execution_options(isolation_level="REPEATABLE READ")
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{shown}: schema version {version}, this medsight reads {SCHEMA_VERSION}; "
                "start `medsight serve` of the matching version to migrate it"
            )
        with Session(reader) as session:
            yield session
    finally:
        engine.dispose()


@app.command("verify")
def verify(database_url: str = URL_OPTION) -> None:
    """Recompute every audit record's hash; exit 1 naming the first bad record if any."""
    from medsight.serve.store.audit import verify_chain

    with reading(database_url) as session:
        check = verify_chain(session)
    if not check.ok:
        typer.echo(
            f"audit chain broken at record {check.first_bad_seq}: {check.reason} "
            f"({check.records} records before it verified)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"audit chain OK: {check.records} records checked")


@app.command("export")
def export(
    since: str = typer.Option(
        "",
        "--since",
        help="Only records from this ISO 8601 date or date-time on (UTC unless it names a "
        "zone); default: every record.",
        show_default=False,
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write the JSON lines to this file (atomically) instead of stdout.",
        show_default=False,
    ),
    database_url: str = URL_OPTION,
) -> None:
    """Write audit records as JSON lines, oldest first, each with its hash and previous hash.

    Every line carries the fields its hash covers, so a recipient can recompute the chain.
    """
    from medsight.runs.atomic import atomic_path
    from medsight.serve.store.audit import export_records

    start = parse_since(since) if since else None
    with reading(database_url) as session:
        records = export_records(session, start)
        if out is None:
            for record in records:
                typer.echo(json.dumps(record))
            return
        count = 0
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
                count += 1
    say(f"{count} audit records written to {out}")
