"""A real ``python -m medsight serve`` process for tests that need one (a browser, a kill -9,
TLS, the console output): its own folder, a free loopback port, stdout and stderr in files.

The environment is cleaned of ``MEDSIGHT_*`` variables so the caller's settings cannot leak
in; ``env`` adds the ones a test wants.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_args(work: Path, database_url: str) -> list[str]:
    """``--data WORK/data --registry WORK/registry --database-url URL``."""
    return [
        "--data",
        str(work / "data"),
        "--registry",
        str(work / "registry"),
        "--database-url",
        database_url,
    ]


@dataclass
class ServiceProcess:
    """One ``medsight serve`` process; `stop` it (SIGTERM) or `kill` it (SIGKILL)."""

    process: subprocess.Popen
    port: int
    folder: Path
    cert: Path | None = None  # the certificate it serves over TLS, for clients to trust

    @classmethod
    def start(cls, folder: Path, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        command = [sys.executable, "-m", "medsight", "serve", "--port", str(port), *args]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
        clean.update(env or {})
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            process = subprocess.Popen(command, cwd=folder, env=clean, stdout=out, stderr=err)
        return cls(process, port, folder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return (self.folder / "stdout").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.folder / "stderr").read_text(errors="replace")

    def output_bytes(self) -> tuple[bytes, bytes]:
        return (self.folder / "stdout").read_bytes(), (self.folder / "stderr").read_bytes()

    def exit_code(self, timeout_s: float = 180.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def wait_serving(
        self, url: str, verify: ssl.SSLContext | bool = True, timeout_s: float = 180.0
    ) -> httpx.Response:
        """The first answer from ``url`` (any status), waiting while the service starts."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited early:\n{self.stderr()}"
            try:
                return httpx.get(url, verify=verify, timeout=2.0)
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"no answer from {url} in {timeout_s:.0f} s:\n{self.stderr()}")

    def wait_healthy(self, timeout_s: float = 180.0) -> None:
        r = self.wait_serving(f"{self.url}/healthz", timeout_s=timeout_s)
        assert r.status_code == 200, r.text

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after a minute; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        self.process.wait()
