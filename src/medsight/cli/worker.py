"""`medsight worker`: run queued jobs without the HTTP server (scale workers apart from the API).

Settings come from MEDSIGHT_* environment variables like `medsight serve`'s (the same
database, data folder and registry); the options below override them. Run any number of
these on any number of machines against one PostgreSQL database and one shared data folder,
with `medsight serve --workers 0` answering the API.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medsight.errors import InputError


def worker(
    data_dir: Path = typer.Option(
        None, "--data", help="Shared folder of uploads and results [MEDSIGHT_DATA_DIR]."
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="SQLAlchemy URL (default: SQLite beside --data)."
    ),
    registry: Path = typer.Option(
        None, "--registry", help="Model registry folder [MEDSIGHT_REGISTRY]."
    ),
    threads: int = typer.Option(
        None, "--threads", min=1, help="Jobs run at once by this process [MEDSIGHT_WORKERS]."
    ),
) -> None:
    """Run queued prediction jobs from the service's database until stopped (SIGTERM)."""
    from medsight.serve.jobs.worker_process import run_worker
    from medsight.serve.launch import configure_logging
    from medsight.serve.settings import settings_from_options

    settings = settings_from_options(
        "worker settings",
        data_dir=data_dir,
        database_url=database_url,
        registry=registry,
        workers=threads,
    )
    if settings.workers < 1:
        raise InputError("worker settings: MEDSIGHT_WORKERS must be at least 1 for a worker")
    configure_logging()
    run_worker(settings)
