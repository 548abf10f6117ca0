"""The DICOM node with pynetdicom peers: receive from a known AE, route, run, send back.

A pynetdicom SCU plays the modality/PACS sending a study and a pynetdicom SCP plays the
PACS receiving results, so these tests need no system packages; the tests against real
Orthanc and dcmtk peers are in test_pacs_integration.py.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest
import yaml
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from service_kit import CANARY_ID, CANARY_NAME, ct_series_bytes, running_service
from service_process import free_port
from sqlalchemy import select

from medsight.serve.store.audit import verify_chain
from medsight.serve.store.schema import AuditRecord, Delivery, DicomSeries, Job

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


class FakePacs:
    """A Storage SCP (AE PACS) that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[pydicom.Dataset] = []
        self.port = free_port()
        ae = AE(ae_title="PACS")
        for uid in (SR_CLASS, SEG_CLASS, CTImageStorage, "1.2.840.10008.5.1.4.1.1.7"):
            ae.add_supported_context(uid)
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )

    def _store(self, event) -> int:  # type: ignore[no-untyped-def]
        ds = event.dataset
        ds.file_meta = event.file_meta
        self.received.append(ds)
        return 0

    def stop(self) -> None:
        self.server.shutdown()


def send_series(files: list[bytes], port: int, calling: str) -> list[int]:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDSIGHT")
    if not assoc.is_established:
        return [-1]
    statuses = [int(assoc.send_c_store(pydicom.dcmread(io.BytesIO(f))).Status) for f in files]
    assoc.release()
    return statuses


def node_config(
    tmp: Path, pacs_port: int, routes: list[dict], quiet: float = 1.0, heatmap: bool = False
) -> Path:
    path = tmp / "node.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "ae_title": "MEDSIGHT",
                "port": free_port(),
                "quiet_seconds": quiet,
                "peers": [
                    {"ae_title": "SCANNER", "host": "127.0.0.1", "port": 1},
                    {"ae_title": "PACS", "host": "127.0.0.1", "port": pacs_port},
                ],
                "destination": "PACS",
                "routes": routes,
                "send_heatmap": heatmap,
            }
        )
    )
    return path


def wait_until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def pacs():  # type: ignore[no-untyped-def]
    server = FakePacs()
    yield server
    server.stop()


@pytest.mark.slow  # a 3D job end to end, waiting on the series' quiet period
def test_series_is_routed_run_and_results_return_in_the_original_study(
    tmp_path: Path, pacs: FakePacs, database_url: str
) -> None:
    config = node_config(
        tmp_path,
        pacs.port,
        routes=[
            {
                "model": "seg3d",
                "modality": ["CT"],
                "series_description": "(?i)chest",
                "min_slices": 10,
            },
            {"model": "cls3d", "modality": ["CT"]},
        ],
    )
    seg_series = ct_series_bytes(tmp_path, slices=12, seed=3)  # "CHEST CT", 12 slices -> seg3d
    cls_series = ct_series_bytes(tmp_path, slices=6, seed=4)  # 6 slices -> cls3d
    originals = [pydicom.dcmread(io.BytesIO(f)) for f in (seg_series[0], cls_series[0])]
    with running_service(tmp_path, database_url, dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert set(send_series(seg_series, port, "SCANNER")) == {0}
        assert set(send_series(cls_series, port, "SCANNER")) == {0}
        wait_until(lambda: len(pacs.received) == 2, timeout=90)

        def all_sent() -> bool:  # the PACS has the objects just before the node records it
            with s.db.session() as session:
                states = session.execute(select(Delivery.state)).scalars().all()
                return sorted(states) == ["sent", "sent"]

        wait_until(all_sent, timeout=30)
        by_class = {str(ds.SOPClassUID): ds for ds in pacs.received}
        seg, sr = by_class[SEG_CLASS], by_class[SR_CLASS]
        for result, original in ((seg, originals[0]), (sr, originals[1])):
            assert result.StudyInstanceUID == original.StudyInstanceUID
            assert (str(result.PatientName), result.PatientID) == (CANARY_NAME, CANARY_ID)
            assert "PatientIdentityRemoved" not in result
        referenced = {
            item.ReferencedSOPInstanceUID
            for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
        }
        sent_uids = {pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID for f in seg_series}
        assert referenced == sent_uids
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == originals[0].SeriesInstanceUID
        with s.db.session() as session:
            jobs = session.execute(select(Job)).scalars().all()
            assert sorted(j.model_name for j in jobs) == ["cls3d", "seg3d"]
            deliveries = session.execute(select(Delivery)).scalars().all()
            assert {d.state for d in deliveries} == {"sent"}
            series = session.execute(select(DicomSeries)).scalars().all()
            assert all(row.reidentification is None for row in series)  # erased once sent
            actions = session.execute(select(AuditRecord.action, AuditRecord.outcome)).all()
            assert actions.count(("dicom_send", "sent")) == 2
            assert actions.count(("predict_submit", "queued")) == 2
            assert verify_chain(session).ok
        # nothing identified is stored
        for path in s.settings.data_dir.rglob("*.dcm"):
            assert CANARY_NAME.encode() not in path.read_bytes()
            assert originals[0].StudyInstanceUID.encode() not in path.read_bytes()


def test_unknown_calling_ae_is_rejected_and_audited(tmp_path: Path, pacs: FakePacs) -> None:
    config = node_config(tmp_path, pacs.port, routes=[{"model": "cls3d"}])
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert send_series(ct_series_bytes(tmp_path, slices=3), port, "STRANGER") == [-1]

        def audited() -> bool:
            with s.db.session() as session:
                return bool(
                    session.execute(
                        select(AuditRecord).where(AuditRecord.action == "dicom_associate")
                    ).first()
                )

        wait_until(audited, 10)
        with s.db.session() as session:
            rows = (
                session.execute(select(AuditRecord).where(AuditRecord.action == "dicom_associate"))
                .scalars()
                .all()
            )
            assert [(r.outcome, r.client.split("@")[0]) for r in rows] == [("rejected", "STRANGER")]
            assert session.execute(select(DicomSeries)).first() is None
        assert (
            'medsight_dicom_associations_total{outcome="rejected"} 1.0'
            in s.client.get("/metrics", headers=s.tokens.header("admin")).text
        )


def test_quarantined_instance_gets_a_failure_status(tmp_path: Path, pacs: FakePacs) -> None:
    config = node_config(tmp_path, pacs.port, routes=[{"model": "cls3d"}])
    files = ct_series_bytes(tmp_path, slices=2)
    ds = pydicom.dcmread(io.BytesIO(files[0]))
    ds.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert send_series([buffer.getvalue(), files[1]], port, "SCANNER") == [0xC001, 0]


def test_unrouted_series_is_audited_and_erased(tmp_path: Path, pacs: FakePacs) -> None:
    config = node_config(tmp_path, pacs.port, routes=[{"model": "cls3d", "modality": ["MR"]}])
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert set(send_series(ct_series_bytes(tmp_path, slices=3), port, "SCANNER")) == {0}

        def unrouted() -> bool:
            with s.db.session() as session:
                row = session.execute(select(DicomSeries)).scalar_one()
                return row.state == "unrouted"

        wait_until(unrouted, 30)
        assert not any((s.settings.data_dir / "incoming").iterdir())
        with s.db.session() as session:
            row = session.execute(select(DicomSeries)).scalar_one()
            assert row.reidentification is None


@pytest.mark.slow  # waits out the sender's retry backoff
def test_peer_down_is_retried_then_delivered(tmp_path: Path) -> None:
    pacs_port = free_port()  # nothing listens yet
    config = node_config(tmp_path, pacs_port, routes=[{"model": "cls3d"}])
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert set(send_series(ct_series_bytes(tmp_path, slices=4), port, "SCANNER")) == {0}

        def attempted() -> bool:
            with s.db.session() as session:
                row = session.execute(select(Delivery)).scalar_one_or_none()
                return row is not None and row.attempts >= 1

        wait_until(attempted, 60)
        metrics = s.client.get("/metrics", headers=s.tokens.header("admin")).text
        assert 'medsight_dicom_deliveries_total{outcome="retry"}' in metrics
        late = FakePacs.__new__(FakePacs)
        late.received, late.port = [], pacs_port
        ae = AE(ae_title="PACS")
        ae.add_supported_context(SR_CLASS)
        late.server = ae.start_server(
            ("127.0.0.1", pacs_port), block=False, evt_handlers=[(evt.EVT_C_STORE, late._store)]
        )
        try:
            wait_until(lambda: len(late.received) == 1, 30)
        finally:
            late.stop()
        with s.db.session() as session:
            row = session.execute(select(Delivery)).scalar_one()
            assert row.state == "sent" and row.attempts >= 2 and "unreachable" in row.last_error
            outcomes = (
                session.execute(
                    select(AuditRecord.outcome).where(AuditRecord.action == "dicom_send")
                )
                .scalars()
                .all()
            )
            assert outcomes[-1] == "sent" and set(outcomes[:-1]) == {"retry"}
            assert len(outcomes) == row.attempts


@pytest.mark.slow  # a 3D job end to end, waiting on the series' quiet period
def test_heatmap_secondary_capture_is_sent_with_the_sr(tmp_path: Path, pacs: FakePacs) -> None:
    config = node_config(tmp_path, pacs.port, routes=[{"model": "cls3d"}], heatmap=True)
    series = ct_series_bytes(tmp_path, slices=6, seed=7)
    originals = {pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID for f in series}
    study = pydicom.dcmread(io.BytesIO(series[0])).StudyInstanceUID
    with running_service(tmp_path, f"sqlite:///{tmp_path}/m.db", dicom_config=config) as s:
        port = s.client.app.state.service.dicom_node.port
        assert set(send_series(series, port, "SCANNER")) == {0}
        wait_until(lambda: len(pacs.received) == 2, timeout=90)
    by_class = {str(ds.SOPClassUID): ds for ds in pacs.received}
    capture = by_class["1.2.840.10008.5.1.4.1.1.7"]
    assert SR_CLASS in by_class and capture.StudyInstanceUID == study
    assert capture.BurnedInAnnotation == "NO" and capture.SamplesPerPixel == 3
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID in originals
    assert str(capture.PatientName) == CANARY_NAME
