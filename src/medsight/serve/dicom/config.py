"""`NodeConfig`: the DICOM node's AE title, port, known peers, result destination and routing.

Loaded from a YAML (or JSON) file given to ``medsight serve --dicom-config``::

    ae_title: MEDSIGHT          # our AE title (called AE must match)
    port: 11112                 # DICOM port (TLS-less DICOM: bind it to a hospital VLAN)
    host: 127.0.0.1
    quiet_seconds: 10           # a series is complete after this long without a new instance
    peers:                      # who may send to us (calling AE titles); others are rejected
      - {ae_title: ORTHANC, host: 127.0.0.1, port: 4242}
    destination: ORTHANC        # the peer results are sent back to (C-STORE)
    routes:                     # first matching rule picks the model
      - model: lung-seg         # NAME or NAME:VERSION in the registry
        modality: [CT]
        body_part: [CHEST, LUNG]
        series_description: "(?i)chest|thorax|lung"
        min_slices: 16
    send_heatmap: false         # also send a Secondary Capture heatmap (classification)
    tls_cert: node.pem          # optional DICOM TLS (both ways); with tls_ca, peers must
    tls_key: node.key           # present a certificate signed by that CA (mutual TLS)
    tls_ca: hospital-ca.pem

Routing rules compare the *original* series' attributes (body part and description are
read before de-identification removes the description); every condition left out matches.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsight.errors import InputError

_AE = re.compile(r"^[ -~]{1,16}$")


def _check_ae(value: str) -> str:
    value = value.strip()
    if not _AE.match(value) or "\\" in value:
        raise ValueError("an AE title is 1-16 printable ASCII characters without backslash")
    return value


class Peer(BaseModel):
    """A DICOM application entity we accept from or send to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ae_title: str
    host: str = "127.0.0.1"
    port: int = Field(104, ge=1, le=65535)

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        return _check_ae(value)


class RouteRule(BaseModel):
    """Which model runs on a series; every condition given must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str
    modality: list[str] = []
    body_part: list[str] = []
    series_description: str = ""
    min_slices: int = 1
    max_slices: int = 100_000

    @field_validator("series_description")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"series_description is not a regular expression: {exc}") from None
        return value

    def matches(self, modality: str, body_part: str, description: str, slices: int) -> bool:
        if self.modality and modality.upper() not in {m.upper() for m in self.modality}:
            return False
        if self.body_part and body_part.upper() not in {b.upper() for b in self.body_part}:
            return False
        if self.series_description and not re.search(self.series_description, description):
            return False
        return self.min_slices <= slices <= self.max_slices


class NodeConfig(BaseModel):
    """The DICOM node's configuration (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ae_title: str = "MEDSIGHT"
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=0, le=65535)
    quiet_seconds: float = Field(10.0, gt=0)
    peers: list[Peer] = []
    destination: str = ""
    routes: list[RouteRule] = []
    send_heatmap: bool = False
    max_send_attempts: int = Field(8, ge=1)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    def server_tls(self) -> ssl.SSLContext | None:
        """The TLS context of the SCP (None: plain DICOM).

        With ``tls_ca`` peers must present a certificate signed by it (mutual TLS, as
        PS3.15 Annex B's secure transport profiles expect); without it any TLS client that
        knows an allowed AE title may connect.
        """
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        if self.tls_ca is not None:
            context.load_verify_locations(str(self.tls_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_tls(self) -> ssl.SSLContext | None:
        """The TLS context for sending results (None: plain DICOM): verifies the peer
        against ``tls_ca`` and presents our certificate."""
        if self.tls_ca is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.tls_ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_cert is not None:
            context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        return context

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        return _check_ae(value)

    def peer(self, ae_title: str) -> Peer | None:
        return next((p for p in self.peers if p.ae_title == ae_title.strip()), None)

    def route(self, modality: str, body_part: str, description: str, slices: int) -> str | None:
        """The model of the first rule the series matches, or None."""
        for rule in self.routes:
            if rule.matches(modality, body_part, description, slices):
                return rule.model
        return None


def load_node_config(path: Path) -> NodeConfig:
    """Read and check a node configuration file.

    Raises:
        InputError: missing or unreadable file, invalid YAML, unknown keys or bad values, or
            a destination that is not among the peers.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise InputError(f"{path}: not valid YAML") from None
    try:
        config = NodeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: {where}: {first['msg']}") from None
    if config.destination and config.peer(config.destination) is None:
        raise InputError(f"{path}: destination {config.destination} is not one of the peers")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise InputError(f"{path}: give both tls_cert and tls_key, or neither")
    for name in ("tls_cert", "tls_key", "tls_ca"):
        file = getattr(config, name)
        if file is not None and not Path(file).is_file():
            raise InputError(f"{path}: {name}: {file} is not a file")
    try:
        config.server_tls()
        config.client_tls()
    except (ssl.SSLError, OSError) as exc:
        raise InputError(f"{path}: TLS files cannot be used ({type(exc).__name__})") from None
    return config
