"""DICOM peers for the tests: DCMTK's command-line SCUs, and whether this machine has them.

DCMTK (Debian ``dcmtk``) is the reference implementation most PACS and modalities are tested
against, so an association it opens is what medsight's node must accept (or refuse). Each
wrapper returns ``(returncode, output)``, stdout and stderr together, and never raises on a
failed association: tests assert on the return code and the text.

Tests that need a peer call `require_peers`: where the peer is missing it skips them, with
the reason, unless ``MEDSIGHT_REQUIRE_PEERS=1`` (CI sets it) makes that a failure, so CI
cannot pass by skipping every interoperability test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from orthanc_server import OrthancUnavailable, find_orthanc, have_dicomweb

REQUIRE_ENV = "MEDSIGHT_REQUIRE_PEERS"
DCMTK_PROGRAMS = ("echoscu", "storescu")


def dcmtk_program(name: str) -> str | None:
    """The absolute path of DCMTK's ``name``, or None.

    pynetdicom installs its own ``echoscu``/``storescu`` scripts (other options) into the
    venv's bin, which comes first on PATH in an activated venv: look in the system folders
    Debian installs DCMTK into first, and accept a PATH hit only if it is OFFIS DCMTK.
    """
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        return None
    try:
        version = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if "DCMTK" in version else None


def have_dcmtk() -> bool:
    """Whether DCMTK's ``echoscu`` and ``storescu`` are installed."""
    return all(dcmtk_program(program) for program in DCMTK_PROGRAMS)


def have_orthanc() -> bool:
    """Whether the Orthanc server program is installed."""
    try:
        find_orthanc()
    except OrthancUnavailable:
        return False
    return True


def require_peers(dcmtk: bool = False, orthanc: bool = False, dicomweb: bool = False) -> None:
    """Skip the calling test (or fail it, under ``MEDSIGHT_REQUIRE_PEERS=1``) if a peer is missing.

    Args:
        dcmtk: needs ``echoscu`` and ``storescu``.
        orthanc: needs the Orthanc server.
        dicomweb: needs Orthanc's DICOMweb plugin.
    """
    missing = []
    if dcmtk and not have_dcmtk():
        missing.append("dcmtk (echoscu, storescu)")
    if orthanc and not have_orthanc():
        missing.append("orthanc (/usr/sbin/Orthanc)")
    if dicomweb and not have_dicomweb():
        missing.append("orthanc-dicomweb (libOrthancDicomWeb.so)")
    if not missing:
        return
    reason = f"not installed: {', '.join(missing)}; run `make system-deps`"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(f"DICOM peer tests skipped: {reason}")


def _run(cmd: list[str], timeout: float) -> tuple[int, str]:
    done = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stdout + done.stderr


def _network_options(called_aet: str, calling_aet: str, timeout: float) -> list[str]:
    # connect, ACSE and DIMSE timeouts, so a silent peer fails the call instead of hanging it
    seconds = str(max(1, int(timeout)))
    return ["-aec", called_aet, "-aet", calling_aet, "-to", seconds, "-ta", seconds, "-td", seconds]


def echoscu(
    host: str, port: int, called_aet: str, calling_aet: str, timeout: float = 20.0
) -> tuple[int, str]:
    """C-ECHO (Verification) from ``calling_aet`` to ``called_aet`` at ``host:port``.

    Returns:
        ``(returncode, output)``: 0 when the peer accepted the association and answered.

    Raises:
        subprocess.TimeoutExpired: echoscu ran past ``timeout`` seconds (it is killed).
    """
    options = _network_options(called_aet, calling_aet, timeout / 2)
    return _run([dcmtk_program("echoscu") or "echoscu", *options, host, str(port)], timeout)


def storescu(
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str,
    files: Sequence[Path],
    timeout: float = 60.0,
) -> tuple[int, str]:
    """C-STORE DICOM files, or every file under folders, in one association.

    Args:
        host: the SCP's address.
        port: its DICOM port.
        called_aet: the SCP's AE title.
        calling_aet: ours.
        files: DICOM files and/or folders (scanned recursively).
        timeout: seconds for the whole run.

    Returns:
        ``(returncode, output)``: 0 when every file was stored; non-zero when the association
        was rejected or any store failed (``output`` says which).

    Raises:
        subprocess.TimeoutExpired: storescu ran past ``timeout`` seconds (it is killed).
    """
    if not files:
        raise ValueError("storescu: no files to send")
    scan = ["+sd", "+r"] if any(Path(f).is_dir() for f in files) else []
    options = _network_options(called_aet, calling_aet, min(timeout / 2, 30))
    # -v: each association and store is reported, so a failed assertion shows why
    command = [
        dcmtk_program("storescu") or "storescu",
        "-v",
        *options,
        *scan,
        host,
        str(port),
        *map(str, files),
    ]
    return _run(command, timeout)
