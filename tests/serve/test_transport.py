"""`medsight serve` refuses plain HTTP off loopback, and serves HTTPS when given a certificate.

Real processes (``python -m medsight serve``): each start imports torch and costs seconds of
CPU, so the module fixture starts all four at once and the tests then look at each:

- ``refused``: ``--host 0.0.0.0`` without TLS: exits non-zero with one line, never listens;
- ``half_tls``: ``--tls-cert`` without ``--tls-key``: the same;
- ``insecure``: ``--host 0.0.0.0 --insecure-http``: serves, and logs an INSECURE warning;
- ``tls``: a self-signed certificate on loopback: HTTPS only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from service_kit import make_users

from medsight.errors import InputError
from medsight.serve.database import Database
from medsight.serve.launch import check_transport

PASSWORD = "correct horse battery"  # service_kit.make_users's default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_on(port: int) -> set[str]:
    """IPv4 addresses (hex, as in /proc/net/tcp) with a socket listening on ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(address)
    return found


ALL_INTERFACES, LOOPBACK = "00000000", "0100007F"


def self_signed(folder: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate and key for 127.0.0.1 (openssl), or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Launched:
    """One ``medsight serve`` process with its own folder, port and output files."""

    process: subprocess.Popen
    port: int
    folder: Path
    cert: Path | None = None  # the certificate it serves, for clients to trust

    @classmethod
    def start(cls, folder: Path, *args: str) -> Launched:
        folder.mkdir(parents=True)
        port = free_port()
        command = [sys.executable, "-m", "medsight", "serve", "--port", str(port)]
        command += ["--data", str(folder / "data"), "--registry", str(folder / "registry")]
        command += args
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=err)
        return cls(process, port, folder)

    def stderr(self) -> str:
        return (self.folder / "stderr").read_text(errors="replace")

    def exit_code(self, timeout_s: float = 180.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def wait_serving(
        self, url: str, verify: ssl.SSLContext | bool, timeout_s: float = 180.0
    ) -> httpx.Response:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited early:\n{self.stderr()}"
            try:
                return httpx.get(url, verify=verify, timeout=2.0)
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"no answer from {url} in {timeout_s:.0f} s:\n{self.stderr()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Launched]]:
    tmp = tmp_path_factory.mktemp("transport")
    placeholder = tmp / "only-a-cert.pem"
    placeholder.write_text("the flag check comes before the file is read\n")
    processes = {
        "refused": Launched.start(tmp / "refused", "--host", "0.0.0.0"),
        "half_tls": Launched.start(tmp / "half", "--tls-cert", str(placeholder)),
        "insecure": Launched.start(tmp / "insecure", "--host", "0.0.0.0", "--insecure-http"),
    }
    pair = self_signed(tmp)
    if pair is not None:
        database_url = f"sqlite:///{tmp}/tls.db"
        db = Database(database_url)
        make_users(db, PASSWORD)
        db.close()
        cert, key = pair
        tls_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
        processes["tls"] = Launched.start(tmp / "tls", "--database-url", database_url, *tls_args)
        processes["tls"].cert = cert
    try:
        yield processes
    finally:
        for process in processes.values():
            process.stop()


@pytest.mark.slow  # the module's processes start together: seconds of imports each
@pytest.mark.parametrize(
    ("name", "says"),
    [("refused", "--insecure-http"), ("half_tls", "give both --tls-cert and --tls-key")],
)
def test_unsafe_setups_exit_with_one_line_and_never_listen(
    launched: dict[str, Launched], name: str, says: str
) -> None:
    process = launched[name]
    code = process.exit_code()
    lines = process.stderr().strip().splitlines()
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert "Traceback" not in process.stderr()
    assert (process.folder / "stdout").read_bytes() == b""
    # refused before anything was opened: no data folder, no database, no socket
    assert not (process.folder / "data").exists()
    assert not list(process.folder.glob("*.db"))
    assert listening_on(process.port) == set()


@pytest.mark.slow
def test_insecure_http_off_loopback_serves_and_warns(launched: dict[str, Launched]) -> None:
    process = launched["insecure"]
    url = f"http://127.0.0.1:{process.port}"
    assert process.wait_serving(f"{url}/healthz", verify=False).json() == {"status": "ok"}
    assert listening_on(process.port) == {ALL_INTERFACES}
    # authentication is not relaxed with the transport
    assert httpx.get(f"{url}/v1/me").status_code == 401
    warning = [line for line in process.stderr().splitlines() if "INSECURE" in line]
    assert len(warning) == 1 and "WARNING" in warning[0] and "0.0.0.0" in warning[0]
    process.stop()  # now, rather than at teardown: it listens on every interface


@pytest.mark.slow
def test_tls_serves_https_only(launched: dict[str, Launched]) -> None:
    if "tls" not in launched:
        pytest.skip("openssl is not installed: no certificate to serve with")
    process = launched["tls"]
    trusted = ssl.create_default_context(cafile=str(process.cert))
    url = f"https://127.0.0.1:{process.port}"
    r = process.wait_serving(f"{url}/healthz", verify=trusted)
    assert r.status_code == 200 and r.url.scheme == "https"
    assert listening_on(process.port) == {LOOPBACK}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{process.port}/healthz", timeout=5.0)
    # over HTTPS the viewer's cookies are marked Secure
    login = httpx.post(
        f"{url}/v1/login", json={"name": "clinician", "password": PASSWORD}, verify=trusted
    )
    assert login.status_code == 200, login.text
    cookies = login.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("Secure" in cookie for cookie in cookies), cookies
    assert f"medsight serve on https://127.0.0.1:{process.port}" in process.stderr()
    assert "INSECURE" not in process.stderr()
    process.stop()


def test_certificate_and_key_come_together(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder\n")
    with pytest.raises(InputError, match="give both"):
        check_transport("127.0.0.1", None, key, insecure_http=False)
    with pytest.raises(InputError, match="no such file"):
        check_transport("127.0.0.1", tmp_path / "missing.pem", key, insecure_http=False)
    assert check_transport("127.0.0.1", None, None, insecure_http=False) == "http"
    with pytest.raises(InputError, match="not loopback"):
        check_transport("0.0.0.0", None, None, insecure_http=False)
