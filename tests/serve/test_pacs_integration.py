"""The DICOM node against real peers: an Orthanc PACS and DCMTK's command-line SCUs.

test_dicom_node.py plays both ends with pynetdicom; here the other end is what a hospital
runs. Orthanc pushes studies to medsight (its own association, AE title and transfer
syntaxes) and files what comes back: a result counts only if Orthanc puts it in the
original study, under the original patient, referencing the images as Orthanc stores them.
DCMTK's ``echoscu``/``storescu`` are the reference SCUs most modalities are tested against.

One Orthanc (AE ``ORTHANC``) serves the module, and one medsight service (AE ``MEDSIGHT``,
peers ``ORTHANC`` and ``STORESCU``, results to ``ORTHANC``) serves the round-trip and DCMTK
tests; the refusal test runs its own service under an AE title Orthanc does not know.
Missing peers skip these tests, or fail them under ``MEDSIGHT_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
import yaml
from dcmtk_tools import echoscu, require_peers, storescu
from orthanc_server import HOST, Orthanc, running_orthanc
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from service_kit import CANARY_ID, CANARY_NAME, Service, ct_series_bytes, running_service
from service_process import free_port
from sqlalchemy import select

from medsight.imaging.io.dicom_seg_read import read_dicom_seg
from medsight.imaging.io.dicom_sr_read import read_classification_sr
from medsight.imaging.io.read_image import read_image
from medsight.serve.dicom.config import Peer
from medsight.serve.dicom.sender import SendError, c_store
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.schema import AuditRecord, Delivery, DicomSeries, Job

pytestmark = pytest.mark.external  # Orthanc and dcmtk's echoscu/storescu

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
#: seg3d takes chest CT of at least this many slices; every other CT series goes to cls3d
SEG_MIN_SLICES = 10
ROUTES = [
    {
        "model": "seg3d",
        "modality": ["CT"],
        "series_description": "(?i)chest",
        "min_slices": SEG_MIN_SLICES,
    },
    {"model": "cls3d", "modality": ["CT"]},
]


def write_node_config(
    path: Path, ae_title: str, peers: dict[str, int], destination: str = "ORTHANC"
) -> Path:
    """A node configuration: ``peers`` is {AE title: port}, all on loopback."""
    config = {
        "ae_title": ae_title,
        "port": free_port(),
        "quiet_seconds": 1.0,
        "peers": [{"ae_title": aet, "host": HOST, "port": port} for aet, port in peers.items()],
        "destination": destination,
        "routes": ROUTES,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy value of ``condition()``, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def node_port(service: Service) -> int:
    return int(service.client.app.state.service.dicom_node.port)


def job_ids(service: Service) -> set[str]:
    with service.db.session() as session:
        return set(session.execute(select(Job.id)).scalars().all())


def finished_jobs(service: Service, count: int, before: set[str]) -> list[Job]:
    """The ``count`` jobs made since ``before`` (a `job_ids` snapshot), once all have ended."""

    def ended() -> list[Job] | None:
        with service.db.session() as session:
            jobs = session.execute(select(Job).where(Job.id.not_in(before))).scalars().all()
            if len(jobs) >= count and all(j.state in ("done", "failed") for j in jobs):
                return sorted(jobs, key=lambda j: j.model_name)
        return None

    return wait_until(ended, 60, f"{count} new job(s) ended")


def delivered(service: Service, job_id: str) -> Delivery | None:
    with service.db.session() as session:
        row = session.execute(select(Delivery).where(Delivery.job_id == job_id)).scalar_one()
        return row if row.state != "waiting" else None


def result_series(orthanc: Orthanc, study_uid: str, modality: str) -> dict[str, Any] | None:
    """The one ``modality`` series of the study with this UID in Orthanc, once there."""
    for study in orthanc.find_studies_by_uid(study_uid):
        found = [
            s
            for s in orthanc.series_of_study(study["ID"])
            if s["MainDicomTags"].get("Modality") == modality
        ]
        if found:
            [series] = found
            return series
    return None


def instance_datasets(orthanc: Orthanc, series: dict[str, Any]) -> list[pydicom.Dataset]:
    return [
        pydicom.dcmread(io.BytesIO(orthanc.instance_file(instance_id)))
        for instance_id in series["Instances"]
    ]


def slice_order(datasets: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """Instances sorted along the slice normal (the `[z, y, x]` order medsight reads in)."""
    orientation = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    return sorted(
        datasets,
        key=lambda ds: float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient])),
    )


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def orthanc() -> Iterator[Orthanc]:
    """The module's Orthanc, AE ORTHANC; medsight is added as a modality once it listens."""
    require_peers(orthanc=True)
    with running_orthanc(aet="ORTHANC") as server:
        yield server


@pytest.fixture(scope="module")
def node(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose node (AE MEDSIGHT) takes ORTHANC and STORESCU and answers ORTHANC.

    Orthanc learns it as modality ``medsight``, so that Orthanc may push to it and accept
    its stores.
    """
    tmp = tmp_path_factory.mktemp("node")
    config = write_node_config(
        tmp / "node.yaml", "MEDSIGHT", {"ORTHANC": orthanc.dicom_port, "STORESCU": free_port()}
    )
    with running_service(tmp, f"sqlite:///{tmp}/m.db", dicom_config=config) as service:
        orthanc.set_modality("medsight", "MEDSIGHT", HOST, node_port(service))
        assert orthanc.echo("medsight")
        yield service
        orthanc.delete_modality("medsight")


# -- tests ----------------------------------------------------------------------------------
def test_orthanc_push_returns_seg_and_sr_into_the_original_studies(
    orthanc: Orthanc, node: Service, tmp_path: Path
) -> None:
    seg_files = ct_series_bytes(tmp_path, slices=12, seed=11)  # CHEST CT, 12 slices -> seg3d
    cls_files = ct_series_bytes(tmp_path, slices=6, seed=12)  # 6 slices -> cls3d
    stored = {
        "seg": orthanc.upload_instances(seg_files),
        "cls": orthanc.upload_instances(cls_files),
    }
    study_ids = {kind: items[0].study_id for kind, items in stored.items()}
    originals = {
        kind: slice_order(instance_datasets(orthanc, orthanc.series_of_study(study_id)[0]))
        for kind, study_id in study_ids.items()
    }

    before = job_ids(node)
    report = orthanc.store_to_modality("medsight", [study_ids["seg"], study_ids["cls"]])
    assert (report["InstancesCount"], report["FailedInstancesCount"]) == (18, 0)

    cls_job, seg_job = finished_jobs(node, 2, before)
    assert [(j.model_name, j.state) for j in (cls_job, seg_job)] == [
        ("cls3d", "done"),
        ("seg3d", "done"),
    ], [j.error_message for j in (cls_job, seg_job)]
    for job in (seg_job, cls_job):
        row = wait_until(lambda j=job: delivered(node, j.id), 30, f"delivery of {job.id}")
        assert row.state == "sent", row.last_error

    # -- the SEG: in the original study, on the original images ------------------------
    ct = originals["seg"]
    seg_series = wait_until(
        lambda: result_series(orthanc, ct[0].StudyInstanceUID, "SEG"), 10, "SEG in Orthanc"
    )
    assert seg_series["ParentStudy"] == study_ids["seg"]  # Orthanc: hash of PatientID + study
    [seg] = instance_datasets(orthanc, seg_series)
    assert seg.SOPClassUID == SEG_CLASS
    assert seg.StudyInstanceUID == ct[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    assert (str(seg.PatientName), seg.PatientID) == (CANARY_NAME, CANARY_ID)
    assert (str(seg.PatientName), seg.PatientID) == (str(ct[0].PatientName), ct[0].PatientID)
    assert "PatientIdentityRemoved" not in seg
    assert seg.SeriesInstanceUID != ct[0].SeriesInstanceUID
    ct_uids = [str(ds.SOPInstanceUID) for ds in ct]
    [referenced_series] = seg.ReferencedSeriesSequence
    assert referenced_series.SeriesInstanceUID == ct[0].SeriesInstanceUID
    assert sorted(
        item.ReferencedSOPInstanceUID for item in referenced_series.ReferencedInstanceSequence
    ) == sorted(ct_uids)
    sources = {
        str(src.ReferencedSOPInstanceUID)
        for frame in seg.PerFrameFunctionalGroupsSequence
        for derivation in frame.DerivationImageSequence
        for src in derivation.SourceImageSequence
    }
    assert sources and sources <= set(ct_uids)

    # its label map, read by highdicom on Orthanc's CT, equals the job's NIfTI
    seg_path = tmp_path / "seg.dcm"
    seg_path.write_bytes(orthanc.instance_file(seg_series["Instances"][0]))
    nifti = node.settings.data_dir / "results" / seg_job.id / "segmentation"
    expected = np.rint(read_image(nifti / "segmentation.nii.gz").array).astype(np.uint16)
    reference = tmp_path / "orthanc_ct"
    reference.mkdir()
    for i, ds in enumerate(ct):
        ds.save_as(reference / f"{i:03d}.dcm", enforce_file_format=True)
    volume = read_image(reference)
    assert expected.shape == volume.shape
    for z, ds in enumerate(ct):  # read_image's z order is the slice order used below
        assert np.allclose(
            volume.array[z], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        )
    segmentation = hd.seg.segread(seg_path)
    labels = {int(s.SegmentNumber): s.SegmentLabel for s in segmentation.SegmentSequence}
    assert set(labels.values()) <= {"lung", "nodule"}
    by_highdicom = np.asarray(
        segmentation.get_pixels_by_source_instance(
            source_sop_instance_uids=ct_uids,
            combine_segments=True,
            skip_overlap_checks=True,
            assert_missing_frames_are_empty=True,
        )
    ).astype(np.uint16)
    label_value = {number: ["lung", "nodule"].index(name) + 1 for number, name in labels.items()}
    remapped = np.zeros_like(by_highdicom)
    for number, value in label_value.items():
        remapped[by_highdicom == number] = value
    assert np.array_equal(remapped, expected)
    label_map, _ = read_dicom_seg(seg_path, reference)
    assert np.array_equal(label_map, by_highdicom)

    # -- the SR: in the original study, the job's finding and model -----------------------
    cls_ct = originals["cls"]
    sr_series = wait_until(
        lambda: result_series(orthanc, cls_ct[0].StudyInstanceUID, "SR"), 10, "SR in Orthanc"
    )
    assert sr_series["ParentStudy"] == study_ids["cls"]
    sr_path = tmp_path / "sr.dcm"
    sr_path.write_bytes(orthanc.instance_file(sr_series["Instances"][0]))
    sr = pydicom.dcmread(sr_path)
    assert sr.SOPClassUID == SR_CLASS
    assert (str(sr.PatientName), sr.PatientID) == (CANARY_NAME, CANARY_ID)
    finding = read_classification_sr(sr_path)
    result = cls_job.result or {}
    assert finding["study_uid"] == cls_ct[0].StudyInstanceUID
    assert finding["predicted"] == result["predicted"]
    assert finding["probabilities"] == pytest.approx(result["probabilities"], abs=1e-9)
    assert list(finding["probabilities"]) == list(result["probabilities"])
    assert finding["model"]["sha256"] == cls_job.model_sha256
    assert cls_job.model_sha256 == node.registry.entry("cls3d", cls_job.model_version)["sha256"]
    assert sorted(finding["evidence"]) == sorted(str(ds.SOPInstanceUID) for ds in cls_ct)

    # nothing was filed under a pseudonym: every study Orthanc holds is the canary patient's,
    # and each study sent is still one study
    assert {s["PatientMainDicomTags"]["PatientID"] for s in orthanc.studies()} == {CANARY_ID}
    for study_uid in (ct[0].StudyInstanceUID, cls_ct[0].StudyInstanceUID):
        assert len(orthanc.find_studies_by_uid(study_uid)) == 1
    with node.db.session() as session:
        assert verify_chain(session).ok
    # what Orthanc pushed was de-identified before anything was written
    for path in node.settings.data_dir.rglob("*.dcm"):
        data = path.read_bytes()
        assert CANARY_ID.encode() not in data and ct[0].StudyInstanceUID.encode() not in data


def test_dcmtk_echo_store_and_unknown_ae(orthanc: Orthanc, node: Service, tmp_path: Path) -> None:
    require_peers(dcmtk=True)
    port = node_port(node)
    rc, output = echoscu(HOST, port, "MEDSIGHT", "ORTHANC")
    assert rc == 0, output

    folder = tmp_path / "series"
    folder.mkdir()
    for i, data in enumerate(ct_series_bytes(tmp_path, slices=6, seed=13)):
        (folder / f"{i:03d}.dcm").write_bytes(data)

    rc, output = storescu(HOST, port, "MEDSIGHT", "STRANGER", [folder], timeout=30)
    assert rc != 0, output

    def rejected() -> list[AuditRecord]:
        with node.db.session() as session:
            return list(
                session.execute(
                    select(AuditRecord).where(
                        AuditRecord.action == "dicom_associate",
                        AuditRecord.client.startswith("STRANGER@"),
                    )
                )
                .scalars()
                .all()
            )

    [record] = wait_until(rejected, 10, "audit record of the rejected association")
    assert record.outcome == "rejected"

    before = job_ids(node)
    rc, output = storescu(HOST, port, "MEDSIGHT", "STORESCU", [folder], timeout=30)
    assert rc == 0, output

    [job] = finished_jobs(node, 1, before)
    assert (job.state, job.model_name) == ("done", "cls3d"), job.error_message
    with node.db.session() as session:
        series = session.execute(
            select(DicomSeries).where(DicomSeries.job_id == job.id)
        ).scalar_one()
        assert (series.calling_ae, series.instances) == ("STORESCU", 6)


def test_orthanc_refusing_the_association_is_retried_then_delivered(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    # the node calls as MEDSIGHTX, an AE title Orthanc does not know: Orthanc refuses it
    config = write_node_config(
        tmp_path / "node.yaml", "MEDSIGHTX", {"ORTHANC": orthanc.dicom_port, "SCANNER": 1}
    )
    files = ct_series_bytes(tmp_path, slices=4, seed=14)
    study_uid = str(pydicom.dcmread(io.BytesIO(files[0])).StudyInstanceUID)
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        ae = AE(ae_title="SCANNER")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate(HOST, node_port(s), ae_title="MEDSIGHTX")
        assert assoc.is_established
        statuses = {int(assoc.send_c_store(pydicom.dcmread(io.BytesIO(f))).Status) for f in files}
        assoc.release()
        assert statuses == {0}

        def refused() -> Delivery | None:
            with s.db.session() as session:
                row = session.execute(select(Delivery)).scalar_one_or_none()
                return row if row is not None and row.attempts >= 1 else None

        row = wait_until(refused, 60, "a first, refused delivery attempt")
        assert row.state == "waiting", row.last_error
        assert row.last_error, "the refusal is recorded on the delivery"
        metrics = s.client.get("/metrics", headers=s.tokens.header("admin")).text
        assert 'medsight_dicom_deliveries_total{outcome="retry"}' in metrics
        assert result_series(orthanc, study_uid, "SR") is None
        with s.db.session() as session:
            outcomes = session.execute(
                select(AuditRecord.outcome).where(AuditRecord.action == "dicom_send")
            ).all()
            # each failed attempt is on the record; none given up on, none dropped
            assert outcomes and {o for (o,) in outcomes} == {"retry"}

        orthanc.set_modality("medsightx", "MEDSIGHTX", HOST, node_port(s))
        try:
            done = wait_until(lambda: delivered(s, row.job_id), 30, "delivery after the fix")
            assert done.state == "sent" and done.attempts >= 2, done.last_error
            assert wait_until(lambda: result_series(orthanc, study_uid, "SR"), 10, "SR")
        finally:
            orthanc.delete_modality("medsightx")
        with s.db.session() as session:
            outcomes = session.execute(
                select(AuditRecord.outcome).where(AuditRecord.action == "dicom_send")
            ).all()
            assert [o for (o,) in outcomes if o != "retry"] == ["sent"]


def test_a_store_orthanc_refuses_is_described_truthfully(orthanc: Orthanc, tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(ct_series_bytes(tmp_path, slices=1, seed=15)[0]))
    peer = Peer(ae_title="ORTHANC", host=HOST, port=orthanc.dicom_port)
    with pytest.raises(SendError) as refused:
        c_store([ds], peer, calling_ae="UNKNOWNAE", timeout=10)
    assert "0xFFFF" not in str(refused.value)
    assert re.search(r"(?i)abort|no .*response|refused|rejected", str(refused.value))
