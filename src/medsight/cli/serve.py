"""`medsight serve`: the authenticated inference service (HTTP API, job worker threads).

Settings come from MEDSIGHT_* environment variables (see `ServiceSettings`); the options
below override them. Users and tokens are made with `medsight users`, models registered with
`medsight registry`.
"""

from __future__ import annotations

from pathlib import Path

import typer


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (TLS needed off loopback)."
    ),
    port: int = typer.Option(8443, "--port", min=1, max=65535, help="TCP port."),
    data_dir: Path = typer.Option(
        None, "--data", help="Folder for de-identified uploads and results [MEDSIGHT_DATA_DIR]."
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="SQLAlchemy URL (default: SQLite beside --data)."
    ),
    registry: Path = typer.Option(
        None, "--registry", help="Model registry folder [MEDSIGHT_REGISTRY]."
    ),
    dicom_config: Path = typer.Option(
        None, "--dicom-config", help="Run the DICOM node with this YAML configuration."
    ),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="TLS certificate (PEM)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="TLS private key (PEM)."),
    insecure_http: bool = typer.Option(
        False, "--insecure-http", help="Allow plain HTTP off loopback (warns on every start)."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        min=0,
        help="Job worker threads in this process; 0 for an API-only process beside "
        "`medsight worker` processes [MEDSIGHT_WORKERS, default 1].",
    ),
) -> None:
    """Serve registered models over HTTPS with users, roles, audit and de-identified storage."""
    from medsight.serve.launch import serve as run_service
    from medsight.serve.settings import settings_from_options

    settings = settings_from_options(
        "service settings",
        data_dir=data_dir,
        database_url=database_url,
        registry=registry,
        dicom_config=dicom_config,
        workers=workers,
    )
    run_service(settings, host, port, tls_cert, tls_key, insecure_http)
