"""The DICOM test harness itself, independent of medsight: Orthanc, DCMTK and a pynetdicom SCP.

These prove the peers the DICOM-node tests rely on behave as those tests assume: Orthanc
stores and lists what it is sent, sends a study to a configured Storage SCP with its own AE
title (the path a PACS uses to push studies to medsight), refuses stores from AE titles it
does not know, and an SCP that names its callers refuses everyone else.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dcmtk_tools import echoscu, require_peers, storescu
from orthanc_server import HOST, Orthanc, OrthancError, running_orthanc
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.volume import Volume

pytestmark = pytest.mark.external  # Orthanc and dcmtk's echoscu/storescu

SLICES = 5
SCP_AET = "TESTSCP"
#: the modality Orthanc is told about at start-up, so storescu may store as it
STORESCU_AET = "STORESCU"


def closed_port() -> int:
    """A loopback port nothing listens on (free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def write_series(folder: Path, seed: int) -> tuple[str, list[Path]]:
    """A small synthetic CT series (one file per slice); returns its StudyInstanceUID and files."""
    rng = np.random.default_rng(seed)
    array = rng.normal(-700, 30, (SLICES, 24, 24)).astype(np.float32)
    study_uid = deterministic_uid("peers-study", seed)
    identity = StudyIdentity(
        patient_name=f"Peers^Test{seed}",
        patient_id=f"PEERS-{seed}",
        birth_date="19600101",
        sex="M",
        age_years=66,
        study_date="20260101",
        accession_number=f"PEERS{seed}",
        study_uid=study_uid,
        series_uid=deterministic_uid("peers-series", seed),
        frame_of_reference_uid=deterministic_uid("peers-for", seed),
    )
    paths = write_ct_series(Volume(array, (3.0, 2.0, 2.0), modality="CT"), identity, folder)
    return study_uid, sorted(paths)


def sop_uids(paths: list[Path]) -> list[str]:
    return sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths)


@dataclass
class StorageScp:
    """A pynetdicom Storage SCP on loopback: what it received, as (calling AE, SOPInstanceUID)."""

    port: int
    received: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def scp() -> Iterator[StorageScp]:
    """Storage SCP ``TESTSCP`` accepting CT Image Storage (and C-ECHO) from ``ORTHANC`` only."""
    received: list[tuple[str, str]] = []

    def on_store(event: evt.Event) -> int:
        received.append((event.assoc.requestor.ae_title, str(event.dataset.SOPInstanceUID)))
        return 0x0000

    ae = AE(ae_title=SCP_AET)
    ae.require_calling_aet = ["ORTHANC"]
    ae.add_supported_context(CTImageStorage)
    ae.add_supported_context(Verification)
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None  # None only when block=True
    try:
        yield StorageScp(server.server_address[1], received)
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def orthanc() -> Iterator[Orthanc]:
    """One Orthanc for this module, knowing ``storescu`` (as STORESCU from 127.0.0.1)."""
    require_peers(orthanc=True)
    nobody = closed_port()
    with running_orthanc(modalities={"storescu": (STORESCU_AET, HOST, nobody)}) as server:
        yield server


def test_orthanc_lists_an_uploaded_series(orthanc: Orthanc, tmp_path: Path) -> None:
    study_uid, paths = write_series(tmp_path, seed=1)
    stored = orthanc.upload_instances(p.read_bytes() for p in paths)

    assert [s.status for s in stored] == ["Success"] * SLICES
    study_id = stored[0].study_id
    assert {s.study_id for s in stored} == {study_id}
    listed = {s["ID"]: s for s in orthanc.studies()}
    assert listed[study_id]["MainDicomTags"]["StudyInstanceUID"] == study_uid
    [series] = orthanc.series_of_study(study_id)
    assert series["MainDicomTags"]["Modality"] == "CT"
    assert series["MainDicomTags"]["SeriesInstanceUID"] == deterministic_uid("peers-series", 1)
    assert len(series["Instances"]) == SLICES
    # an upload is kept byte for byte
    assert orthanc.instance_file(stored[0].instance_id) == paths[0].read_bytes()
    assert [s["ID"] for s in orthanc.find_studies_by_uid(study_uid)] == [study_id]
    assert orthanc.find_studies_by_uid(deterministic_uid("peers-study", 999)) == []


def test_dicomweb_plugin_answers_qido(orthanc: Orthanc, tmp_path: Path) -> None:
    require_peers(dicomweb=True)
    study_uid, paths = write_series(tmp_path, seed=5)
    orthanc.upload_instances(p.read_bytes() for p in paths)
    assert orthanc.dicomweb_url is not None
    response = httpx.get(
        f"{orthanc.dicomweb_url}/studies",
        params={"StudyInstanceUID": study_uid},
        auth=orthanc.auth,
        headers={"Accept": "application/dicom+json"},
    )
    assert response.status_code == 200, response.text
    [study] = response.json()
    assert study["0020000D"]["Value"] == [study_uid]  # StudyInstanceUID


def test_echoscu_succeeds_only_where_a_peer_listens(orthanc: Orthanc) -> None:
    require_peers(dcmtk=True)
    rc, output = echoscu(HOST, orthanc.dicom_port, orthanc.aet, "ECHOSCU")
    assert rc == 0, output
    rc, output = echoscu(HOST, closed_port(), orthanc.aet, "ECHOSCU", timeout=10)
    assert rc != 0, output


def test_storescu_stores_a_series_in_orthanc(orthanc: Orthanc, tmp_path: Path) -> None:
    require_peers(dcmtk=True)
    study_uid, paths = write_series(tmp_path / "series", seed=2)
    rc, output = storescu(HOST, orthanc.dicom_port, orthanc.aet, STORESCU_AET, [tmp_path])
    assert rc == 0, output
    study = orthanc.wait_for_study(study_uid, instances=SLICES, timeout=10)
    [series] = orthanc.series_of_study(study["ID"])
    stored = [
        i["MainDicomTags"]["SOPInstanceUID"] for i in orthanc.instances_of_series(series["ID"])
    ]
    assert sorted(stored) == sop_uids(paths)


def test_orthanc_refuses_stores_from_an_unknown_ae(orthanc: Orthanc, tmp_path: Path) -> None:
    require_peers(dcmtk=True)
    study_uid, paths = write_series(tmp_path, seed=3)
    rc, output = storescu(HOST, orthanc.dicom_port, orthanc.aet, "STRANGER", paths)
    assert rc != 0, output
    assert orthanc.find_studies_by_uid(study_uid) == []


def test_orthanc_sends_a_study_to_a_storage_scp(
    orthanc: Orthanc, scp: StorageScp, tmp_path: Path
) -> None:
    study_uid, paths = write_series(tmp_path, seed=4)
    study_id = orthanc.upload_instances(p.read_bytes() for p in paths)[0].study_id
    orthanc.set_modality("testscp", SCP_AET, HOST, scp.port)
    assert orthanc.modalities()["testscp"]["Port"] == scp.port
    assert orthanc.echo("testscp")
    assert not orthanc.echo("storescu")  # nothing listens there

    report = orthanc.store_to_modality("testscp", [study_id])

    assert (report["InstancesCount"], report["FailedInstancesCount"]) == (SLICES, 0)
    assert {aet for aet, _ in scp.received} == {orthanc.aet}
    assert sorted(uid for _, uid in scp.received) == sop_uids(paths)


def test_orthanc_store_fails_when_the_scp_refuses_its_ae(
    orthanc: Orthanc, scp: StorageScp, tmp_path: Path
) -> None:
    _, paths = write_series(tmp_path, seed=6)
    study_id = orthanc.upload_instances(p.read_bytes() for p in paths)[0].study_id
    orthanc.set_modality("impostor", SCP_AET, HOST, scp.port, local_aet="NOTORTHANC")

    with pytest.raises(OrthancError, match="NOTORTHANC|rejected|Rejected"):
        orthanc.store_to_modality("impostor", [study_id])
    assert scp.received == []


def test_scp_rejects_an_unknown_calling_ae(scp: StorageScp, tmp_path: Path) -> None:
    require_peers(dcmtk=True)
    _, paths = write_series(tmp_path, seed=7)

    rc, output = storescu(HOST, scp.port, SCP_AET, "STRANGER", paths)
    assert rc != 0, output
    assert "Calling AE Title Not Recognized" in output
    assert scp.received == []

    rc, output = storescu(HOST, scp.port, SCP_AET, "ORTHANC", paths)
    assert rc == 0, output
    assert sorted(uid for _, uid in scp.received) == sop_uids(paths)
