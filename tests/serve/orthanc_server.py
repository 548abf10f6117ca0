"""A throwaway Orthanc for the tests: a PACS to receive studies from and send studies to.

Why a real Orthanc: medsight's DICOM node must interoperate with a PACS, and only a real one
shows what a PACS actually sends (its association, its transfer syntaxes, its AE title) and
what it accepts back. Debian's ``orthanc`` package (`make system-deps` installs it, with
``orthanc-dicomweb``) provides /usr/sbin/Orthanc; version 1.10.1 on Debian 12.

Each server gets a temp folder holding its JSON configuration, storage and index (SQLite), on
two free ports. Orthanc 1.10 has no option to bind to one address: both its HTTP and DICOM
ports listen on every interface. What keeps other hosts out instead: ``RemoteAccessAllowed``
false (HTTP answers loopback clients only), HTTP basic auth with a random password (so other
local users are out too), and DICOM stores accepted only from the configured modalities, from
the host configured for them (``DicomAlwaysAllowStore`` false, ``DicomCheckModalityHost``
true), so a modality must be given as ``127.0.0.1``, not ``localhost``. C-ECHO is open to all.

Orthanc runs happily as root; as root it is still run as the package's ``orthanc`` system user
(when that user exists), since it is a network server and needs nothing of root's.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
HOST = "127.0.0.1"
USER = "medsight"
#: the system user Debian's package creates; the server runs as it when we are root
RUN_AS = "orthanc"

#: ``{symbolic name: (AE title, host, port)}``, Orthanc's ``DicomModalities`` form
Modalities = Mapping[str, tuple[str, str, int]]


class OrthancUnavailable(RuntimeError):
    """This machine cannot run Orthanc: it is not installed."""


class OrthancError(RuntimeError):
    """A REST call to Orthanc answered with an error (the message carries Orthanc's details)."""


def find_orthanc() -> Path:
    """The Orthanc program: Debian's /usr/sbin/Orthanc, else ``Orthanc`` on PATH.

    Raises:
        OrthancUnavailable: neither exists.
    """
    if ORTHANC_BIN.is_file():
        return ORTHANC_BIN
    on_path = shutil.which("Orthanc")
    if on_path:
        return Path(on_path)
    raise OrthancUnavailable(
        f"Orthanc is not installed (no {ORTHANC_BIN}, no Orthanc on PATH); "
        "run `make system-deps` or `apt-get install orthanc orthanc-dicomweb`"
    )


def have_dicomweb() -> bool:
    """Whether the DICOMweb plugin (Debian's ``orthanc-dicomweb``) is installed."""
    return DICOMWEB_PLUGIN.exists()


@dataclass(frozen=True)
class StoredInstance:
    """Orthanc's answer to an upload: its identifiers (not DICOM UIDs) for the instance."""

    instance_id: str
    series_id: str
    study_id: str
    #: ``Success``, or ``AlreadyStored`` when Orthanc had this SOPInstanceUID already
    status: str


class Orthanc:
    """A running Orthanc (see `running_orthanc`): its addresses and a small REST client.

    Resource ids below are Orthanc's own (hashes such as ``08afd453-c377f405-...``), not
    DICOM UIDs; `find_studies_by_uid` maps a StudyInstanceUID to them.
    """

    def __init__(
        self,
        http_port: int,
        dicom_port: int,
        aet: str,
        auth: tuple[str, str],
        log_path: Path,
        dicomweb: bool,
    ) -> None:
        self.host = HOST
        self.http_port = http_port
        self.dicom_port = dicom_port
        self.aet = aet
        self.auth = auth
        self.url = f"http://{HOST}:{http_port}"
        #: the DICOMweb root (QIDO-RS, WADO-RS, STOW-RS), or None without the plugin
        self.dicomweb_url = f"{self.url}/dicom-web" if dicomweb else None
        self.log_path = log_path
        self.client = httpx.Client(base_url=self.url, auth=auth, timeout=60.0)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One REST call.

        Raises:
            OrthancError: Orthanc answered 4xx/5xx; the message has its ``Details``.
        """
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise OrthancError(
                f"{method} {path} -> {response.status_code}: {response.text.strip()[:2000]}"
            )
        return response

    def system(self) -> dict[str, Any]:
        """``GET /system``: version, AE title, ports."""
        return self.request("GET", "/system").json()

    def upload_instance(self, data: bytes) -> StoredInstance:
        """Store one DICOM file (Part 10 bytes) through REST, as a PACS import would."""
        body = self.request(
            "POST", "/instances", content=data, headers={"Content-Type": "application/dicom"}
        ).json()
        return StoredInstance(body["ID"], body["ParentSeries"], body["ParentStudy"], body["Status"])

    def upload_instances(self, files: Iterable[bytes]) -> list[StoredInstance]:
        """`upload_instance` for each file, in order."""
        return [self.upload_instance(data) for data in files]

    def studies(self) -> list[dict[str, Any]]:
        """Every study: ``ID``, ``MainDicomTags`` (StudyInstanceUID ...), ``Series`` ids."""
        return self.request("GET", "/studies", params={"expand": ""}).json()

    def series_of_study(self, study_id: str) -> list[dict[str, Any]]:
        """The series of a study: ``ID``, ``MainDicomTags`` (Modality, SeriesInstanceUID ...),
        ``Instances`` ids."""
        return self.request("GET", f"/studies/{study_id}/series").json()

    def instances_of_series(self, series_id: str) -> list[dict[str, Any]]:
        """The instances of a series: ``ID``, ``MainDicomTags`` (SOPInstanceUID ...)."""
        return self.request("GET", f"/series/{series_id}/instances").json()

    def instance_file(self, instance_id: str) -> bytes:
        """The stored DICOM file of an instance."""
        return self.request("GET", f"/instances/{instance_id}/file").content

    def find_studies_by_uid(self, study_uid: str) -> list[dict[str, Any]]:
        """The studies (0 or 1) with this StudyInstanceUID, expanded as in `studies`."""
        query = {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}, "Expand": True}
        return self.request("POST", "/tools/find", json=query).json()

    def study_instance_count(self, study_id: str) -> int:
        return len(self.request("GET", f"/studies/{study_id}/instances").json())

    def wait_for_study(
        self, study_uid: str, instances: int = 1, stable: bool = False, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until Orthanc holds a study with at least ``instances`` instances.

        Args:
            study_uid: its StudyInstanceUID.
            instances: how many instances (all series together) to wait for.
            stable: also wait for Orthanc to call it stable (no new instance for
                ``StableAge``, 1 s here).
            timeout: seconds.

        Returns:
            The study, expanded as in `studies`.

        Raises:
            AssertionError: not there in time (the message says what was there).
        """
        deadline = time.monotonic() + timeout
        seen = "no such study"
        while True:
            for study in self.find_studies_by_uid(study_uid):
                count = self.study_instance_count(study["ID"])
                seen = f"{count} instances, stable={study.get('IsStable')}"
                if count >= instances and (study.get("IsStable") or not stable):
                    return study
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Orthanc: study {study_uid} not there with {instances} instances"
                    f"{' (stable)' if stable else ''} after {timeout} s: {seen}"
                )
            time.sleep(0.1)

    def modalities(self) -> dict[str, dict[str, Any]]:
        """The configured DICOM peers: ``{name: {"AET", "Host", "Port", ...}}``."""
        return self.request("GET", "/modalities", params={"expand": ""}).json()

    def set_modality(
        self, name: str, aet: str, host: str, port: int, local_aet: str | None = None
    ) -> None:
        """Add or replace a DICOM peer while running (``PUT /modalities/{name}``).

        Args:
            name: its symbolic name, used in the other calls.
            aet: its AE title (Orthanc calls it with this as the called AE).
            host: its address; ``127.0.0.1`` for a local peer (see the module notes).
            port: its DICOM port.
            local_aet: the calling AE title Orthanc uses towards this peer (default: its own).
        """
        peer: dict[str, Any] = {"AET": aet, "Host": host, "Port": port}
        if local_aet is not None:
            peer["LocalAet"] = local_aet
        self.request("PUT", f"/modalities/{name}", json=peer)

    def delete_modality(self, name: str) -> None:
        self.request("DELETE", f"/modalities/{name}")

    def echo(self, modality: str) -> bool:
        """Whether a C-ECHO from Orthanc to a configured peer succeeds.

        Raises:
            OrthancError: no modality of that name (a test set-up error, not a failed echo).
        """
        response = self.client.post(f"/modalities/{modality}/echo", json={})
        if response.status_code == 404:
            raise OrthancError(f"no modality {modality!r}: {response.text.strip()[:500]}")
        return response.status_code == 200

    def store_to_modality(
        self, modality: str, resource_ids: Sequence[str], timeout: float = 60.0
    ) -> dict[str, Any]:
        """C-STORE studies, series or instances to a configured peer; returns when done.

        Args:
            modality: the peer's symbolic name (a key of ``DicomModalities``).
            resource_ids: Orthanc ids of studies, series or instances.
            timeout: seconds for the whole transfer.

        Returns:
            Orthanc's report: ``InstancesCount``, ``FailedInstancesCount``, ``RemoteAet`` ...

        Raises:
            OrthancError: the peer refused the association or a store, or is not reachable.
        """
        body = {"Resources": list(resource_ids), "Synchronous": True}
        return self.request(
            "POST", f"/modalities/{modality}/store", json=body, timeout=timeout
        ).json()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _config(
    root: Path,
    http_port: int,
    dicom_port: int,
    aet: str,
    password: str,
    modalities: Modalities,
    dicomweb: bool,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Name": "medsight-test",
        "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "DicomServerEnabled": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: password},
        "DicomModalities": {name: list(peer) for name, peer in modalities.items()},
        "DicomModalitiesInDatabase": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": True,
        "DicomCheckCalledAet": False,
        # Orthanc otherwise holds its SCU association open 5 s after a transfer
        "DicomAssociationCloseDelay": 0,
        "DicomScuTimeout": 10,
        "StableAge": 1,
        "ConcurrentJobs": 2,
        "SaveJobs": False,
        "HttpThreadsCount": 10,
        "DicomThreadsCount": 2,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "SyncStorageArea": False,
        "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
    }
    config.update(overrides)
    return config


def _run_as() -> pwd.struct_passwd | None:
    """The account to run Orthanc as: ``orthanc`` when we are root and it exists, else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, auth: tuple[str, str], timeout: float
) -> bool:
    """True once ``/system`` answers; False if the process exits first (e.g. port taken)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(auth=auth, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/system").status_code == 200:
                    return True
            time.sleep(0.05)
    raise RuntimeError(f"Orthanc did not answer on {url}/system within {timeout} s")


@contextlib.contextmanager
def running_orthanc(
    aet: str = "ORTHANC",
    modalities: Modalities | None = None,
    dicomweb: bool = True,
    config: Mapping[str, Any] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[Orthanc]:
    """Run a fresh, empty Orthanc for the duration of the block.

    Args:
        aet: Orthanc's own AE title (``DicomAet``); it calls peers with it.
        modalities: the DICOM peers it may send to and accept stores from,
            ``{name: (AE title, host, port)}``; give the host as ``127.0.0.1``.
        dicomweb: load the DICOMweb plugin when it is installed.
        config: more configuration keys, overriding the defaults here.
        start_timeout: seconds to wait for the REST API to answer.

    Yields:
        The running server (REST client on ``127.0.0.1:HTTP_PORT``).

    Raises:
        OrthancUnavailable: Orthanc is not installed.
        RuntimeError: the server did not start (the message carries its log).
    """
    if len(aet) > 16:
        raise ValueError(f"{aet!r}: a DICOM AE title has at most 16 characters")
    program = find_orthanc()
    dicomweb = dicomweb and have_dicomweb()
    account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="medsight-orthanc-"))
    log_path = root / "orthanc.log"
    password = secrets.token_hex(16)
    auth = (USER, password)
    process: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(3):
            http_port, dicom_port = _free_port(), _free_port()
            config_path = root / "orthanc.json"
            config_path.write_text(
                json.dumps(
                    _config(
                        root,
                        http_port,
                        dicom_port,
                        aet,
                        password,
                        modalities or {},
                        dicomweb,
                        config or {},
                    ),
                    indent=2,
                )
            )
            config_path.chmod(0o600)
            if account is not None:
                for path in (root, config_path):
                    os.chown(path, account.pw_uid, account.pw_gid)
            with open(log_path, "ab") as log:
                log_start = log.tell()
                process = subprocess.Popen(
                    [str(program), str(config_path)],
                    cwd=root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    user=account.pw_uid if account else None,
                    group=account.pw_gid if account else None,
                    extra_groups=[] if account else None,
                )
            url = f"http://{HOST}:{http_port}"
            if _wait_ready(process, url, auth, start_timeout):
                break
            log_text = log_path.read_bytes()[log_start:].decode(errors="replace")
            # another process took a port between _free_port and Orthanc's bind
            if attempt < 2 and "already in use" in log_text:
                continue
            raise RuntimeError(
                f"Orthanc exited {process.returncode} while starting:\n{log_text[-3000:]}"
            )
        server = Orthanc(http_port, dicom_port, aet, auth, log_path, dicomweb)
        try:
            yield server
        finally:
            server.client.close()
    finally:
        try:
            if process is not None:
                _stop(process)
        finally:
            shutil.rmtree(root, ignore_errors=True)
