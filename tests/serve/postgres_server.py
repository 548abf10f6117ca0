"""A throwaway PostgreSQL server for the tests: initdb, start on loopback, stop and delete.

Why a real server: the service's PostgreSQL paths (the row lock on the audit head, the
advisory lock around migrations, ``timestamptz``) behave differently from SQLite's, and only a
real server shows it. Debian's ``postgresql`` package (`make system-deps` installs it) keeps
its programs in /usr/lib/postgresql/VERSION/bin, off PATH, so they are looked up there first.

PostgreSQL refuses to run as root: as root, initdb and the server run as the ``postgres``
system user (``runuser``) in a temp folder handed to that user; otherwise they run directly.
The server listens on 127.0.0.1 only, on a free port, keeps its socket in the temp folder and
asks for a random password (scram-sha-256), so no other local user can use it. Durability is
off (fsync, full_page_writes, synchronous_commit): the data dies with the test run anyway.

Its default time zone is deliberately not UTC, so code that hands PostgreSQL naive datetimes
(which it reads in the session's zone) fails here instead of on a server abroad.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEBIAN_ROOT = Path("/usr/lib/postgresql")
USER = "medsight"
TIME_ZONE = "America/New_York"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a PostgreSQL server: no binaries, or no user to run them as."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: the newest Debian one, else PATH's.

    Raises:
        PostgresUnavailable: neither /usr/lib/postgresql/*/bin nor PATH has ``initdb``.
    """

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))

    installed = [p.parent for p in DEBIAN_ROOT.glob("*/bin/initdb")]
    if installed:
        return max(installed, key=version)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH); "
        "run `make system-deps` or `apt-get install postgresql`"
    )


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs a program as a user PostgreSQL accepts, and that user."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and there is no `postgres` user to run the server as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root, and there is no `runuser` to drop to postgres")
    return [runuser, "-u", "postgres", "--"], account


def _run(cmd: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {tail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(socket_dir: Path) -> str:
    return (
        "\n# medsight tests: a throwaway server\n"
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "fsync = off\n"
        "synchronous_commit = off\n"
        "full_page_writes = off\n"
        "shared_buffers = 32MB\n"
        "max_connections = 200\n"
        "autovacuum = off\n"
        f"timezone = '{TIME_ZONE}'\n"
        "log_min_messages = warning\n"
    )


def _admin(url: str) -> psycopg.Connection:
    """An autocommit connection to the server's ``postgres`` database (for CREATE DATABASE)."""
    u = make_url(url)
    return psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r}: a database name here is lower-case letters, digits and _")
    return name


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; returns ``url`` pointing at it."""
    with _admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_check_name(name))))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` on the server of ``url``, closing any connection still open."""
    with _admin(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(_check_name(name))
            )
        )


def _start(pg_ctl: list[str], data: Path, log: Path, cwd: Path) -> int:
    """Start the server on a free port (retrying if another process takes it first)."""
    for attempt in range(3):
        port = _free_port()
        cmd = [*pg_ctl, "start", "-D", str(data), "-l", str(log), "-w", "-t", "60"]
        try:
            _run([*cmd, "-o", f"-p {port}"], cwd)
            return port
        except RuntimeError as exc:
            text = log.read_text(errors="replace") if log.exists() else ""
            if attempt < 2 and "could not bind" in text:
                continue
            raise RuntimeError(f"{exc}\nserver log:\n{text[-2000:]}") from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_postgres(database: str = "medsight") -> Iterator[str]:
    """Run a fresh PostgreSQL server for the duration of the block.

    Args:
        database: name of the database created for the caller.

    Yields:
        ``postgresql+psycopg://medsight:PASSWORD@127.0.0.1:PORT/DATABASE``.

    Raises:
        PostgresUnavailable: this machine has no PostgreSQL, or no user to run it as.
        RuntimeError: initdb or the server failed (the message carries their output).
    """
    bin_dir = find_bin_dir()
    prefix, account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="medsight-pg-"))
    data, log = root / "data", root / "server.log"
    pg_ctl = [*prefix, str(bin_dir / "pg_ctl")]
    try:
        password = secrets.token_hex(16)
        pwfile = root / "password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if account is not None:
            for path in (root, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        _run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            root,
        )
        pwfile.unlink()
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(_config(root))
        port = _start(pg_ctl, data, log, root)
        server = f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{port}/postgres"
        yield create_database(server, _check_name(database))
    finally:
        try:
            if (data / "postmaster.pid").exists():
                try:
                    _run([*pg_ctl, "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30"], root)
                except (RuntimeError, subprocess.TimeoutExpired):
                    _run([*pg_ctl, "stop", "-D", str(data), "-m", "immediate", "-w"], root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
