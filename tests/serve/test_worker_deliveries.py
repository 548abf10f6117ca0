"""Two DICOM nodes delivering from one database send each result once.

Two `deliver_due` rounds run at the same time (as two service processes' nodes would) on one
finished job's delivery. The C-STORE itself is replaced by a recorder that holds the send for
a moment, so both rounds overlap while it is in flight; the DICOM objects and
re-identification are replaced too (`test_dicom_node` sends real ones): what is under test is
the claim. Exactly one round must send, and the trail must say ``sent`` once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy import select

from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.dicom import sender
from medsight.serve.dicom.config import NodeConfig, Peer
from medsight.serve.store.audit import verify_chain
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import record_key, seal
from medsight.serve.store.schema import AuditRecord, Delivery, DicomSeries, Job, User, utcnow

KEY = record_key("k" * 64)


def finished_job_with_delivery(db: Database) -> int:
    with db.write() as session:
        user = User(name="dicom-node", role="service")
        session.add(user)
        session.flush()
        session.add(
            Job(
                id="00000000-0000-4000-8000-000000000001",
                user_id=user.id,
                model_name="cls3d",
                model_version="1",
                model_sha256="0" * 64,
                input_kind="dicom",
                input_sha256="1" * 64,
                state="done",
                attempts=1,
                finished=utcnow(),
                result={"task": "classify"},
            )
        )
        series = DicomSeries(
            series_key="1.2.3", calling_ae="SCANNER", state="queued", reidentification=seal({}, KEY)
        )
        session.add(series)
        session.flush()
        delivery = Delivery(
            job_id="00000000-0000-4000-8000-000000000001", series_id=series.id, destination="PACS"
        )
        session.add(delivery)
        session.commit()
        return delivery.id


def test_two_nodes_send_a_delivery_once(database_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sends: list[str] = []

    def slow_store(datasets, peer, calling_ae, timeout=30, tls=None):  # type: ignore[no-untyped-def]
        sends.append(threading.current_thread().name)
        time.sleep(1.0)  # the other node's round runs meanwhile

    monkeypatch.setattr(sender, "c_store", slow_store)
    monkeypatch.setattr(sender, "result_objects", lambda job, data_dir, heatmap: [Dataset()])
    monkeypatch.setattr(sender, "reidentify", lambda ds, record: ds)
    config = NodeConfig(peers=[Peer(ae_title="PACS", port=11113)], destination="PACS")
    db = Database(database_url)
    try:
        delivery_id = finished_job_with_delivery(db)
        counts: list[int] = []

        def node() -> None:
            counts.append(deliver(db, config, tmp_path))

        threads = [threading.Thread(target=node, name=f"node-{i}") for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(sends) == 1, sends
        assert sorted(counts) == [0, 1]
        with db.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert (row.state, row.attempts, row.lease_token) == ("sent", 1, None)
            outcomes = (
                session.execute(
                    select(AuditRecord.outcome).where(AuditRecord.action == "dicom_send")
                )
                .scalars()
                .all()
            )
            assert outcomes == ["sent"]
            assert verify_chain(session).ok
    finally:
        db.close()


def deliver(db: Database, config: NodeConfig, data_dir: Path) -> int:
    return sender.deliver_due(db, config, data_dir, KEY, ServiceMetrics())
