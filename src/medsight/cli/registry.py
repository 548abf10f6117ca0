"""`medsight registry add|list|show|retire`: the model registry, written from the host only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from medsight.console import console, say
from medsight.errors import InputError

app = typer.Typer(
    help="Register trained runs as immutable, checksummed model versions.", no_args_is_help=True
)
DEFAULT_ROOT = Path(os.environ.get("MEDSIGHT_REGISTRY", "medsight-registry"))
ROOT_OPTION = typer.Option(
    DEFAULT_ROOT,
    "--registry",
    help="Registry folder (default: $MEDSIGHT_REGISTRY or ./medsight-registry).",
)


def _split(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition(":")
    if not sep or not version:
        raise InputError(f"{ref}: give NAME:VERSION")
    return name, version


@app.command("add")
def add(
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    name: str = typer.Option(..., "--name", help="Model name (lower-case)."),
    version: str = typer.Option("", "--version", help="Version label (default: next number)."),
    root: Path = ROOT_OPTION,
) -> None:
    """Copy RUN_DIR's weights, contract and calibration in as a new immutable version."""
    from medsight.releases.model_registry import ModelRegistry

    registry = ModelRegistry(root)
    version, entry = registry.add(run_dir, name, version or None)
    print(json.dumps({"name": name, "version": version, **entry}))


@app.command("list")
def list_models(root: Path = ROOT_OPTION) -> None:
    """Every registered version, with its task and state."""
    from medsight.releases.model_registry import ModelRegistry

    table = Table(title=f"models in {root}")
    for column in ("name", "version", "task", "model", "added", "state", "sha256"):
        table.add_column(column)
    for name, versions in sorted(ModelRegistry(root).list().items()):
        for version, e in versions.items():
            state = "retired" if e["retired"] else "active"
            table.add_row(
                name, version, e["task"], e["model_name"], e["added"], state, e["sha256"][:12]
            )
    console.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME:VERSION"),
    root: Path = ROOT_OPTION,
) -> None:
    """Print one version's entry after verifying every file's SHA-256."""
    from medsight.releases.model_registry import ModelRegistry

    name, version = _split(ref)
    registry = ModelRegistry(root)
    folder = registry.verified_path(name, version)
    print(
        json.dumps(
            {
                "name": name,
                "version": version,
                "path": str(folder),
                **registry.entry(name, version),
            },
            indent=2,
        )
    )


@app.command("retire")
def retire(
    ref: str = typer.Argument(..., help="NAME:VERSION"),
    root: Path = ROOT_OPTION,
) -> None:
    """Flag a version retired: kept for audit, never served."""
    from medsight.releases.model_registry import ModelRegistry

    name, version = _split(ref)
    ModelRegistry(root).retire(name, version)
    say(f"retired {name}:{version}")
