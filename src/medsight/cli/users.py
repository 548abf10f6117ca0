"""`medsight users add|list|token|revoke|password`: the service's accounts, managed on the host.

Whoever can run this on the host can open the database anyway, so these commands need no
login; every change is still audited, with actor ``host-cli``. A new API token is printed
once, on stdout (the warning goes to stderr, so ``TOKEN=$(medsight users token NAME)``
works); the database keeps only its argon2 hash, so a lost token is replaced, not recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from medsight.console import console, say
from medsight.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from medsight.serve.store.database import Database
    from medsight.serve.store.schema import User

app = typer.Typer(
    help="Add users, issue and revoke their API tokens, set viewer passwords.",
    no_args_is_help=True,
)
DATABASE_OPTION = typer.Option(
    "",
    "--database-url",
    help="SQLAlchemy URL (default: $MEDSIGHT_DATABASE_URL, else medsight.db beside "
    "$MEDSIGHT_DATA_DIR).",
)
DAYS_OPTION = typer.Option(
    None, "--days", help="Token lifetime in days (default: $MEDSIGHT_TOKEN_DAYS or 90)."
)


def _open(database_url: str) -> Database:
    from medsight.serve.settings import ServiceSettings
    from medsight.serve.store.database import Database

    return Database(database_url or ServiceSettings().resolved_database_url())


def _days(days: int | None) -> int:
    from medsight.serve.settings import ServiceSettings

    return days if days is not None else ServiceSettings().token_days


def _user(session: Session, name: str) -> User:
    from medsight.serve.auth.users import get_user

    user = get_user(session, name)
    if user is None:
        raise InputError(f"no user {name!r}: add it with `medsight users add {name} --role ROLE`")
    return user


def _prompt_password() -> str:
    from medsight.serve.auth.tokens import check_password_rules

    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password_rules(password)
    return password


def _show_token(name: str, token: str) -> None:
    typer.echo(f"API token for {name} follows. It will not be shown again: store it now.", err=True)
    typer.echo(token)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="User name: a-z 0-9 . _ - (up to 64)."),
    role: str = typer.Option(..., "--role", help="admin, clinician or service."),
    password_prompt: bool = typer.Option(
        False, "--password-prompt", help="Also set a viewer login password (asked twice)."
    ),
    days: int | None = DAYS_OPTION,
    database_url: str = DATABASE_OPTION,
) -> None:
    """Add a user and print their first API token (once)."""
    from medsight.serve.auth.users import HOST_CLI, add_user, check_name, check_role

    check_name(name)
    check_role(role)
    password = _prompt_password() if password_prompt else None
    db = _open(database_url)
    try:
        with db.write() as session:
            _, token = add_user(
                session, name, role, token_days=_days(days), actor=HOST_CLI, password=password
            )
            session.commit()
    finally:
        db.close()
    _show_token(name, token)


@app.command("list")
def list_(database_url: str = DATABASE_OPTION) -> None:
    """Every user, with role, state and live API tokens (never secrets)."""
    from medsight.serve.auth.users import list_users

    db = _open(database_url)
    try:
        with db.session() as session:
            summaries = list_users(session)
    finally:
        db.close()
    table = Table(title="medsight users")
    for column in ("name", "role", "state", "password", "tokens", "token expires", "created"):
        table.add_column(column)
    for s in summaries:
        expires = s.last_token_expires.date().isoformat() if s.last_token_expires else "-"
        table.add_row(
            s.name,
            s.role,
            "disabled" if s.disabled else "active",
            "yes" if s.has_password else "no",
            str(s.active_tokens),
            expires,
            s.created.date().isoformat(),
        )
    console.print(table)


@app.command("token")
def token(
    name: str = typer.Argument(..., help="User name."),
    days: int | None = DAYS_OPTION,
    database_url: str = DATABASE_OPTION,
) -> None:
    """Issue a new API token for NAME and print it (once); older tokens stay valid."""
    from medsight.serve.auth.users import HOST_CLI, issue_token

    db = _open(database_url)
    try:
        with db.write() as session:
            user = _user(session, name)
            if user.disabled:
                raise InputError(f"user {name!r} is disabled")
            text = issue_token(session, user, _days(days), actor=HOST_CLI)
            session.commit()
    finally:
        db.close()
    _show_token(name, text)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="User name."),
    database_url: str = DATABASE_OPTION,
) -> None:
    """Revoke all of NAME's API tokens and viewer sessions (takes effect at once)."""
    from medsight.serve.auth.users import HOST_CLI, revoke_user

    db = _open(database_url)
    try:
        with db.write() as session:
            revoked = revoke_user(session, _user(session, name), actor=HOST_CLI)
            session.commit()
    finally:
        db.close()
    say(f"revoked {revoked.tokens} token(s) and {revoked.sessions} session(s) of {name}")


@app.command("password")
def password(
    name: str = typer.Argument(..., help="User name."),
    database_url: str = DATABASE_OPTION,
) -> None:
    """Set NAME's viewer login password (asked twice, not echoed); ends their sessions."""
    from medsight.serve.auth.users import HOST_CLI, set_password

    db = _open(database_url)
    try:
        with db.session() as session:
            _user(session, name)  # say so before asking for a password
        new_password = _prompt_password()
        with db.write() as session:
            set_password(session, _user(session, name), new_password, actor=HOST_CLI)
            session.commit()
    finally:
        db.close()
    say(f"password set for {name}")
