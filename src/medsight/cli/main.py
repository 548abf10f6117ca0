"""The `medsight` command: typer app, global flags, and the one place errors become exit codes.

A user error (`InputError`) prints one line ``error: ...`` and exits 2; anything else prints
one line and exits 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

import medsight
from medsight.cli import audit as audit_cli
from medsight.cli import deid as deid_cli
from medsight.cli import demo as demo_cli
from medsight.cli import ehr as ehr_cli
from medsight.cli import evaluate as evaluate_cli
from medsight.cli import explain as explain_cli
from medsight.cli import export as export_cli
from medsight.cli import inspect as inspect_cli
from medsight.cli import plan as plan_cli
from medsight.cli import predict as predict_cli
from medsight.cli import purge as purge_cli
from medsight.cli import registry as registry_cli
from medsight.cli import serve as serve_cli
from medsight.cli import synth as synth_cli
from medsight.cli import text as text_cli
from medsight.cli import train as train_cli
from medsight.cli import users as users_cli
from medsight.cli import worker as worker_cli
from medsight.console import STATE
from medsight.errors import InputError

app = typer.Typer(
    help="medsight: deep learning on medical images, health records and clinical text.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(synth_cli.app, name="synth")
app.add_typer(ehr_cli.app, name="ehr")
app.add_typer(text_cli.app, name="text")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(users_cli.app, name="users")
app.add_typer(audit_cli.app, name="audit")
app.command("demo")(demo_cli.demo)
app.command("predict")(predict_cli.predict)
app.command("deid")(deid_cli.deid)
app.command("plan")(plan_cli.plan)
app.command("inspect")(inspect_cli.inspect)
app.command("train")(train_cli.train)
app.command("evaluate")(evaluate_cli.evaluate)
app.command("export")(export_cli.export)
app.command("explain")(explain_cli.explain)
app.command("serve")(serve_cli.serve)
app.command("worker")(worker_cli.worker)
app.command("purge")(purge_cli.purge)


def _version(value: bool) -> None:
    if value:
        print(f"medsight {medsight.__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Hide progress bars and status lines."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Global options."""
    STATE.quiet = quiet
    STATE.debug = debug


def main() -> None:
    """Entry point for the console script and `python -m medsight`."""
    # OpenMP threads that wait by spinning hold their core: on two cores shared with data
    # workers or anything else a laptop runs, a training step ran 2-2.6x slower than with
    # passive waiting (`medsight.train.fabric_setup`). Read once, when torch loads: the verbs
    # import torch lazily, after this line. A value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    debug = "--debug" in sys.argv
    try:
        app()
    except InputError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # anything else is a bug: say so in one line
        if debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            file=sys.stderr,
        )
        sys.exit(1)
