"""`medsight serve` refuses plain HTTP off loopback, and serves HTTPS when given a certificate.

Real processes (``python -m medsight serve``): each start imports torch and costs seconds of
CPU, so the module fixture starts all four at once and the tests then look at each:

- ``refused``: ``--host 0.0.0.0`` without TLS: exits non-zero with one line, never listens;
- ``half_tls``: ``--tls-cert`` without ``--tls-key``: the same;
- ``insecure``: ``--host 0.0.0.0 --insecure-http``: serves, and logs an INSECURE warning;
- ``tls``: a self-signed certificate on loopback: HTTPS only.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_kit import make_users
from service_process import ServiceProcess

from medsight.errors import InputError
from medsight.serve.launch import check_transport
from medsight.serve.store.database import Database

PASSWORD = "correct horse battery"  # service_kit.make_users's default


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


def start(folder: Path, *args: str) -> ServiceProcess:
    """A service in ``folder`` (its data and registry inside it)."""
    data = ["--data", str(folder / "data"), "--registry", str(folder / "registry")]
    return ServiceProcess.start(folder, *data, *args)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("transport")
    placeholder = tmp / "only-a-cert.pem"
    placeholder.write_text("the flag check comes before the file is read\n")
    processes = {
        "refused": start(tmp / "refused", "--host", "0.0.0.0"),
        "half_tls": start(tmp / "half", "--tls-cert", str(placeholder)),
        "insecure": start(tmp / "insecure", "--host", "0.0.0.0", "--insecure-http"),
    }
    pair = self_signed(tmp)
    if pair is not None:
        database_url = f"sqlite:///{tmp}/tls.db"
        db = Database(database_url)
        make_users(db, PASSWORD)
        db.close()
        cert, key = pair
        tls_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
        processes["tls"] = start(tmp / "tls", "--database-url", database_url, *tls_args)
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
    launched: dict[str, ServiceProcess], name: str, says: str
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
def test_insecure_http_off_loopback_serves_and_warns(launched: dict[str, ServiceProcess]) -> None:
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
def test_tls_serves_https_only(launched: dict[str, ServiceProcess]) -> None:
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
