"""Start the service with uvicorn, refusing an unsafe network setup.

On a non-loopback address the service requires TLS (a certificate and key): tokens and
images must not cross a hospital network in clear text. ``--insecure-http`` overrides this
explicitly (for a deployment behind a TLS-terminating proxy on the same host) and a warning
is logged on every start, so the choice stays visible.

The task plug-ins (torch, Lightning, MONAI, spaCy: seconds to import) are imported in a
background thread once uvicorn listens, so ``/healthz`` answers at once and the first model
load rarely waits for them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn

from medsight.errors import InputError
from medsight.serve.api.app import SwallowErrors, create_app
from medsight.serve.dicom.config import load_node_config
from medsight.serve.jobs.model_cache import register_tasks
from medsight.serve.settings import ServiceSettings

log = logging.getLogger("medsight.serve")


def is_loopback(host: str) -> bool:
    """True when ``host`` only ever binds the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (socket.gaierror, ValueError):
            return False


def check_transport(
    host: str, tls_cert: Path | None, tls_key: Path | None, insecure_http: bool
) -> str:
    """``https`` or ``http`` for this setup.

    Raises:
        InputError: a non-loopback address without TLS and without ``--insecure-http``, or
            only one of certificate and key, or a missing file.
    """
    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key, or neither")
    if tls_cert is not None and tls_key is not None:
        for path in (tls_cert, tls_key):
            if not Path(path).is_file():
                raise InputError(f"{path}: no such file")
        return "https"
    if is_loopback(host):
        return "http"
    if not insecure_http:
        raise InputError(
            f"refusing to serve plain HTTP on {host}, which is not loopback: give "
            "--tls-cert and --tls-key, or --insecure-http behind a TLS proxy"
        )
    return "http"


def configure_logging() -> None:
    logger = logging.getLogger("medsight")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def serve(
    settings: ServiceSettings,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure_http: bool = False,
) -> None:
    """Run the service until interrupted."""
    scheme = check_transport(host, tls_cert, tls_key, insecure_http)
    if settings.dicom_config is not None:
        load_node_config(settings.dicom_config)  # a bad file stops here, in one line
    configure_logging()
    if scheme == "http" and not is_loopback(host):
        log.warning(
            "INSECURE: serving plain HTTP on %s (--insecure-http); tokens and images cross "
            "the network unencrypted unless a TLS proxy fronts this port",
            host,
        )
    app = create_app(settings)
    log.info("medsight serve on %s://%s:%d", scheme, host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            SwallowErrors(app),
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            access_log=False,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=30,
        )
    )
    threading.Thread(
        target=register_tasks_once_listening, args=(server,), name="register-tasks", daemon=True
    ).start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the service (as `uvicorn.run`)
        server.run()
    if not server.started:
        sys.exit(3)  # as `uvicorn.run`: the startup failed (uvicorn logged why)


def register_tasks_once_listening(server: uvicorn.Server) -> None:
    """Import the task plug-ins once ``server`` listens (their import would hold up startup:
    C extensions load under the GIL); the model cache waits for them if a request comes first.
    """
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    register_tasks()
