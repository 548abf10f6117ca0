"""Send finished DICOM jobs' results back to the PACS by C-STORE, retrying with backoff.

For a segmentation job the result is its DICOM SEG; for a classification job a
Comprehensive SR (TID 1500: finding, probabilities, conformal set, algorithm, disclaimer;
`medsight.imaging.io.dicom_sr`) and, with ``send_heatmap``, a Secondary Capture of the slice the
Grad-CAM heatmap weighs most (grey lung window, heatmap blended over it, no text).
All are built on the de-identified series, kept in the job's result
folder in that form, and re-identified in memory just before sending (`reidentify`: original
study, series and instance UIDs, patient and study attributes), so the PACS files them in the
original study and nothing identified touches the disk.

A delivery that fails (peer down, association rejected, a failure status) is retried after
2, 4, 8 ... seconds (at most 5 minutes apart) up to ``max_send_attempts``, then marked
failed. Every attempt's outcome is counted in ``/metrics`` and audited (``retry`` for each
failed attempt, then the final outcome: sent, failed, or skipped because the job failed);
the re-identification record is erased once the delivery ends.

Several nodes may deliver from one database: before sending, a node claims the delivery with
a conditional UPDATE that stamps its own lease token and moves ``next_attempt`` past the
send (`SEND_LEASE_S`), so no other node finds it due meanwhile; the outcome is recorded only
while that token still holds. A node that dies mid-send leaves the delivery to be retried
once the lease runs out (a resend of the same SOP instances, which a PACS files once).
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.presentation import build_context
from sqlalchemy import select, update

from medsight.errors import InputError
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.imaging.io.dicom_sr import ClassificationFinding, write_classification_sr
from medsight.imaging.io.nifti import read_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.secondary_capture import write_heatmap_capture
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.dicom.config import NodeConfig, Peer
from medsight.serve.dicom.receiver import NODE_ACTOR
from medsight.serve.jobs.job_view import stored_result
from medsight.serve.jobs.worker import input_path, result_dir
from medsight.serve.store.audit import AuditEvent, append, job_fields
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import reidentify, unseal
from medsight.serve.store.schema import Delivery, DicomSeries, Job, utcnow
from medsight.tasks.results import SegmentationResult

log = logging.getLogger("medsight.serve")
SR_FILE, SC_FILE = "result_sr.dcm", "result_heatmap_sc.dcm"
#: width and level (HU) of the grey image under the heatmap
LUNG_WINDOW_HU = (1500.0, -600.0)
MAX_BACKOFF_S = 300.0
#: how long a claimed delivery is hidden from other nodes: longer than a send can take
#: (one association, a 30 s timeout per step)
SEND_LEASE_S = 600.0


class SendError(Exception):
    """A delivery attempt failed; the message says why (no patient data)."""


def heatmap_capture(job: Job, data_dir: Path) -> Path | None:
    """A Secondary Capture of the slice the heatmap weighs most (made once and kept), or None
    when the job has no heatmap."""
    from medsight.imaging.explain.overlay import blend_heatmap  # matplotlib: only when needed

    out = result_dir(data_dir, job.id)
    heat_path = out / "heatmap" / "heatmap.nii.gz"
    capture = out / SC_FILE
    if capture.is_file() or not heat_path.is_file():
        return capture if capture.is_file() else None
    source = input_path(data_dir, job.id, "dicom")
    try:
        image = read_image(source).array
        heat = read_nifti(heat_path).array
        if heat.shape != image.shape:
            return None
        z = int(np.argmax(heat.reshape(len(heat), -1).sum(axis=1)))
        low = LUNG_WINDOW_HU[1] - LUNG_WINDOW_HU[0] / 2
        grey = (image[z] - low) / LUNG_WINDOW_HU[0]
        top = float(heat.max()) or 1.0
        rgb = blend_heatmap(grey, heat[z] / top)
        write_heatmap_capture(
            source, rgb, capture, slice_index=z, content_datetime=job.finished or utcnow()
        )
    except (InputError, ValueError):
        return None
    return capture


def result_objects(job: Job, data_dir: Path, heatmap: bool = False) -> list[Dataset]:
    """The de-identified DICOM results of ``job`` (SEG, or an SR made now and kept, plus a
    heatmap Secondary Capture when asked for and available).

    Raises:
        SendError: the job has no DICOM result to send.
    """
    out = result_dir(data_dir, job.id)
    result: dict[str, Any] = dict(job.result or {})
    if isinstance(stored_result(result), SegmentationResult):
        seg = out / "segmentation" / "segmentation.dcm"
        if not seg.is_file():
            raise SendError("the job has no DICOM SEG")
        paths = [seg]
    else:
        sr = out / SR_FILE
        if not sr.is_file():
            try:
                finding = ClassificationFinding.from_result(result)
                finished = job.finished or utcnow()
                write_classification_sr(
                    input_path(data_dir, job.id, "dicom"), finding, sr, content_datetime=finished
                )
            except InputError as exc:
                raise SendError(f"no SR could be made: {type(exc).__name__}") from None
        paths = [sr]
        if heatmap:
            capture = heatmap_capture(job, data_dir)
            if capture is not None:
                paths.append(capture)
    with pydicom_silenced():
        return [pydicom.dcmread(p) for p in paths]


def c_store(
    datasets: list[Dataset],
    peer: Peer,
    calling_ae: str,
    timeout: float = 30,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Send ``datasets`` to ``peer`` in one association.

    Raises:
        SendError: the association was not established or a store did not succeed.
    """
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts = {}
    for ds in datasets:
        syntax = str(ds.file_meta.TransferSyntaxUID)
        contexts[(str(ds.SOPClassUID), syntax)] = build_context(ds.SOPClassUID, [syntax])
    ae.requested_contexts = list(contexts.values())
    tls_args = (tls, peer.host) if tls is not None else None
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, tls_args=tls_args)
    if not assoc.is_established:
        raise SendError("association rejected" if assoc.is_rejected else "peer unreachable")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if not status or "Status" not in status:
                raise SendError("no C-STORE response: the peer aborted or timed out")
            code = int(status.Status)
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise SendError(f"C-STORE status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()


def _audit_send(session: Any, delivery: Delivery, job: Job, outcome: str, target: str) -> None:
    append(
        session,
        AuditEvent(
            actor=NODE_ACTOR,
            role="service",
            action="dicom_send",
            outcome=outcome,
            client=delivery.destination,
            target=target,
            **job_fields(job),
        ),
    )


def _finish(session: Any, delivery: Delivery, state: str, outcome: str, job: Job) -> None:
    delivery.state = state
    if state == "sent":
        delivery.sent = utcnow()
    series = session.get(DicomSeries, delivery.series_id)
    if series is not None:
        series.reidentification = None  # the delivery is over: forget who the patient was
    _audit_send(session, delivery, job, outcome, delivery.job_id)


def deliver_due(
    db: Database,
    config: NodeConfig,
    data_dir: Path,
    record_key: bytes,
    metrics: ServiceMetrics,
    now: dt.datetime | None = None,
) -> int:
    """Attempt every delivery whose job has ended and whose retry time has come.

    Returns:
        Deliveries sent in this round.
    """
    now = now or utcnow()
    sent = 0
    with db.session() as session:
        due = (
            session.execute(
                select(Delivery.id)
                .join(Job, Job.id == Delivery.job_id)
                .where(Delivery.state == "waiting", Job.state.in_(("done", "failed")))
                .where(Delivery.next_attempt <= now)
                .order_by(Delivery.next_attempt)
            )
            .scalars()
            .all()
        )
    for delivery_id in due:
        lease = str(uuid.uuid4())
        with db.write() as session:
            claimed = session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.state == "waiting",
                    Delivery.next_attempt <= now,
                )
                .values(
                    lease_token=lease,
                    next_attempt=utcnow() + dt.timedelta(seconds=SEND_LEASE_S),
                )
            )
            session.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another node claimed it first, or it ended
        with db.session() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.state != "waiting":
                continue
            job = session.get(Job, delivery.job_id)
            series = session.get(DicomSeries, delivery.series_id)
            record_blob = series.reidentification if series else None
        assert job is not None
        peer = config.peer(delivery.destination)
        outcome, error = "sent", ""
        if job.state == "failed":
            outcome = "skipped:job_failed"
        elif peer is None or record_blob is None:
            outcome = "failed:no_destination" if peer is None else "failed:no_record"
        else:
            try:
                record = unseal(record_blob, record_key)
                objects = result_objects(job, data_dir, config.send_heatmap)
                datasets = [reidentify(ds, record) for ds in objects]
                c_store(datasets, peer, config.ae_title, tls=config.client_tls())
            except (SendError, ValueError, OSError) as exc:
                error = str(exc)[:200]
        try:
            with db.write() as session:
                row = session.get(Delivery, delivery_id, with_for_update=True)
                assert row is not None
                if row.lease_token != lease or row.state != "waiting":
                    # the lease ran out and another node took the delivery over
                    log.warning("dicom: delivery lease lost; outcome not recorded")
                    continue
                row.lease_token = None
                if error:
                    row.attempts += 1
                    row.last_error = error
                    if row.attempts >= config.max_send_attempts:
                        _finish(session, row, "failed", "failed:gave_up", job)
                        metrics.dicom_deliveries.labels("failed").inc()
                        log.error("dicom: delivery failed after %d attempts", row.attempts)
                    else:
                        backoff = min(MAX_BACKOFF_S, 2.0**row.attempts)
                        row.next_attempt = utcnow() + dt.timedelta(seconds=backoff)
                        # audited too, so the trail shows every failure, not only the last
                        target = f"{row.job_id} attempt {row.attempts}"
                        _audit_send(session, row, job, "retry", target)
                        metrics.dicom_deliveries.labels("retry").inc()
                        log.warning("dicom: delivery attempt %d failed: %s", row.attempts, error)
                else:
                    state = "sent" if outcome == "sent" else "failed"
                    if outcome.startswith("skipped"):
                        state = "skipped"
                    row.attempts += 1 if outcome == "sent" else 0
                    _finish(session, row, state, outcome, job)
                    metrics.dicom_deliveries.labels(state).inc()
                    sent += outcome == "sent"
                session.commit()
        except ApiError:
            log.error("dicom: delivery outcome could not be recorded; retried when its lease ends")
    with db.session() as session:
        pending = session.execute(select(Delivery.id).where(Delivery.state == "waiting")).all()
        metrics.dicom_pending.set(len(pending))
    return sent
