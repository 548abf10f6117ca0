"""DICOM over TLS (mutual): peers with a certificate from the hospital CA get through, others
do not, and results go back to the PACS over TLS too."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import ssl
from pathlib import Path

import pydicom
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from service_kit import ct_series_bytes, running_service
from service_process import free_port
from test_dicom_node import SR_CLASS, wait_until


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer_key, issuer: str, key, ca: bool = False) -> x509.Certificate:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> dict[str, Path]:
    """A CA and certificates for the node, the PACS and a modality (all for 127.0.0.1)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    files = {"ca": folder / "ca.pem"}
    files["ca"].write_bytes(
        _cert("test CA", ca_key, "test CA", ca_key, ca=True).public_bytes(
            serialization.Encoding.PEM
        )
    )
    for who in ("node", "pacs", "modality"):
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{who}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (folder / f"{who}.pem").write_bytes(
            _cert(who, ca_key, "test CA", key).public_bytes(serialization.Encoding.PEM)
        )
        files[who] = folder / f"{who}.pem"
        files[f"{who}_key"] = folder / f"{who}.key"
    return files


@pytest.mark.slow  # a 3D job end to end over mutual TLS, both directions
def test_mutual_tls_both_ways(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    received: list[pydicom.Dataset] = []

    def store(event) -> int:  # type: ignore[no-untyped-def]
        received.append(event.dataset)
        return 0

    pacs_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    pacs_tls.load_cert_chain(str(pki["pacs"]), str(pki["pacs_key"]))
    pacs_tls.verify_mode = ssl.CERT_REQUIRED
    pacs_port = free_port()
    pacs_ae = AE(ae_title="PACS")
    pacs_ae.add_supported_context(SR_CLASS)
    pacs = pacs_ae.start_server(
        ("127.0.0.1", pacs_port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, store)],
        ssl_context=pacs_tls,
    )
    config = tmp_path / "node.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "port": free_port(),
                "quiet_seconds": 1.0,
                "peers": [
                    {"ae_title": "SCANNER", "host": "127.0.0.1", "port": 1},
                    {"ae_title": "PACS", "host": "127.0.0.1", "port": pacs_port},
                ],
                "destination": "PACS",
                "routes": [{"model": "cls3d"}],
                "tls_cert": str(pki["node"]),
                "tls_key": str(pki["node_key"]),
                "tls_ca": str(pki["ca"]),
            }
        )
    )
    series = ct_series_bytes(tmp_path, slices=4, seed=9)
    try:
        with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
            port = s.client.app.state.service.dicom_node.port

            def associate(with_cert: bool):  # type: ignore[no-untyped-def]
                client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki["ca"]))
                if with_cert:
                    client.load_cert_chain(str(pki["modality"]), str(pki["modality_key"]))
                ae = AE(ae_title="SCANNER")
                ae.add_requested_context(CTImageStorage)
                return ae.associate(
                    "127.0.0.1", port, ae_title="MEDSIGHT", tls_args=(client, "127.0.0.1")
                )

            refused = associate(with_cert=False)
            assert not refused.is_established
            plain = AE(ae_title="SCANNER")
            plain.add_requested_context(CTImageStorage)
            assert not plain.associate("127.0.0.1", port, ae_title="MEDSIGHT").is_established
            assoc = associate(with_cert=True)
            assert assoc.is_established
            for data in series:
                assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(data))).Status == 0
            assoc.release()
            wait_until(lambda: len(received) == 1, timeout=90)
    finally:
        pacs.shutdown()
    assert str(received[0].SOPClassUID) == SR_CLASS
