"""The Storage SCP: CT, MR, CR and DX instances from known peers, de-identified on arrival.

pynetdicom accepts an association only when the called AE title is ours and the calling AE
title is one of the configured peers (others are rejected at association time, audited as
``dicom_associate`` / ``rejected``), and only with the storage SOP classes listed below plus
Verification (C-ECHO). Each received instance is screened (`quarantine_reason`: a refusal
answers a failure status and is audited), size-checked, de-identified in memory, and stored
under ``DATA/incoming/SERIES/``; the series' encrypted re-identification record
(`reidentification`) learns its original UIDs. The original instance is never written.

A series keeps receiving until `series_assembly` closes it after a quiet period; an
instance for a series already closed is refused with a failure status (the PACS shows the
error) rather than dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    MRImageStorage,
    Verification,
)
from sqlalchemy import select

from medsight.imaging.io.deid import DeidPolicy, deidentify_dataset, quarantine_reason
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.runs.atomic import atomic_path
from medsight.serve.api.errors import ApiError
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.dicom.config import NodeConfig
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.audit import AuditEvent, append
from medsight.serve.store.database import Database
from medsight.serve.store.reidentification import (
    add_instance,
    display_record,
    new_record,
    record_key,
    seal,
    unseal,
)
from medsight.serve.store.schema import DicomSeries, utcnow

log = logging.getLogger("medsight.serve")

STORAGE_CLASSES = (
    CTImageStorage,
    EnhancedCTImageStorage,
    MRImageStorage,
    EnhancedMRImageStorage,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
)
SUCCESS = 0x0000
#: failure statuses ("Cannot understand" range, PS3.4 Annex B): the sender sees an error
REFUSED_QUARANTINE = 0xC001
REFUSED_TOO_LARGE = 0xC002
REFUSED_SERIES_CLOSED = 0xC003
OUT_OF_RESOURCES = 0xA700
NODE_ACTOR = "dicom-node"


class Refusal(Exception):
    def __init__(self, status: int, outcome: str) -> None:
        super().__init__(outcome)
        self.status, self.outcome = status, outcome


def incoming_dir(data_dir: Path, series_key: str) -> Path:
    return Path(data_dir) / "incoming" / series_key


def _int(ds: Dataset, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


class StorageReceiver:
    """Receives instances into de-identified series (thread-safe: one call per instance)."""

    def __init__(
        self,
        config: NodeConfig,
        settings: ServiceSettings,
        db: Database,
        policy: DeidPolicy,
        metrics: ServiceMetrics,
    ) -> None:
        self.config, self.settings, self.db = config, settings, db
        self.policy, self.metrics = policy, metrics
        self.key = record_key(policy.key)
        self.server: Any = None

    # -- storing ---------------------------------------------------------------------------
    def receive(
        self, ds: Dataset, calling_ae: str, address: str, owner_id: int | None = None
    ) -> None:
        """De-identify and store one instance.

        ``owner_id``: the user a new series belongs to (DICOMweb senders); None gives it to
        the node's service account, as for C-STORE.

        Raises:
            Refusal: quarantined, too large, or its series is already closed.
        """
        reason = quarantine_reason(ds)
        if reason is not None:
            raise Refusal(REFUSED_QUARANTINE, f"refused:{reason}")
        frames = max(_int(ds, "NumberOfFrames", 1), 1)
        voxels = _int(ds, "Rows", 0) * _int(ds, "Columns", 0) * frames
        if voxels > self.settings.max_voxels:
            raise Refusal(REFUSED_TOO_LARGE, "refused:too_large")
        clean = deidentify_dataset(ds, self.policy)
        series_key = str(clean.SeriesInstanceUID)
        with self.db.write() as session:
            row = session.execute(
                select(DicomSeries).where(DicomSeries.series_key == series_key).with_for_update()
            ).scalar_one_or_none()
            if row is not None and row.state != "receiving":
                raise Refusal(REFUSED_SERIES_CLOSED, "refused:series_closed")
            if row is None:
                row = DicomSeries(
                    series_key=series_key,
                    calling_ae=calling_ae,
                    client=address[:64],
                    modality=str(ds.get("Modality", "") or "")[:16],
                    body_part=str(ds.get("BodyPartExamined", "") or "")[:64],
                    instances=0,
                    owner_id=owner_id,
                )
                record = new_record(ds)
                row.display = seal(display_record(ds), self.key)
                session.add(row)
            else:
                assert row.reidentification is not None
                record = unseal(row.reidentification, self.key)
            add_instance(record, ds, self.policy.key)
            row.reidentification = seal(record, self.key)
            row.instances += 1
            row.last_received = utcnow()
            folder = incoming_dir(self.settings.data_dir, series_key)
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / f"{clean.SOPInstanceUID}.dcm") as tmp, pydicom_silenced():
                clean.save_as(tmp, enforce_file_format=True)
            session.commit()

    def _audit(self, action: str, outcome: str, calling_ae: str, address: str) -> None:
        try:
            with self.db.write() as session:
                append(
                    session,
                    AuditEvent(
                        actor=NODE_ACTOR,
                        role="service",
                        action=action,
                        outcome=outcome,
                        client=f"{calling_ae}@{address}"[:64],
                    ),
                )
                session.commit()
        except ApiError:
            log.error("dicom: audit record could not be written")

    def store(
        self, ds: Dataset, calling_ae: str, address: str, owner_id: int | None = None
    ) -> tuple[int, str]:
        """`receive` for a network peer (C-STORE or STOW-RS), counted in the metrics.

        Returns:
            The DIMSE status (0 when stored) and the outcome for an audit record
            (``stored``, ``refused:REASON`` or ``error``); refusals are the caller's to audit.
        """
        try:
            self.receive(ds, calling_ae, address, owner_id=owner_id)
        except Refusal as exc:
            status, outcome = exc.status, exc.outcome
        except Exception as exc:  # decoding, disk or database trouble: the sender retries
            log.error("dicom: instance not stored (%s)", type(exc).__name__)
            status, outcome = OUT_OF_RESOURCES, "error"
        else:
            status, outcome = SUCCESS, "stored"
        self.metrics.dicom_received.labels(outcome.split(":")[0]).inc()
        return status, outcome

    # -- pynetdicom handlers -----------------------------------------------------------------
    def _on_store(self, event: Any) -> int:
        requestor = event.assoc.requestor
        calling, address = str(requestor.ae_title).strip(), str(requestor.address)
        ds = event.dataset
        ds.file_meta = event.file_meta
        status, outcome = self.store(ds, calling, address)
        if status != SUCCESS:
            self._audit("dicom_receive", outcome, calling, address)
        return status

    def _on_echo(self, event: Any) -> int:
        return SUCCESS

    def _on_rejected(self, event: Any) -> None:
        requestor = event.assoc.requestor
        self.metrics.dicom_associations.labels("rejected").inc()
        self._audit(
            "dicom_associate", "rejected", str(requestor.ae_title).strip(), str(requestor.address)
        )

    def _on_accepted(self, event: Any) -> None:
        self.metrics.dicom_associations.labels("accepted").inc()

    def start(self) -> None:
        """Listen on the configured host and port (in pynetdicom's threads)."""
        ae = AE(ae_title=self.config.ae_title)
        ae.require_called_aet = True
        ae.require_calling_aet = [p.ae_title for p in self.config.peers] or ["\x00"]
        ae.maximum_pdu_size = 0
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ACCEPTED, self._on_accepted),
        ]
        self.server = ae.start_server(
            (self.config.host, self.config.port),
            block=False,
            evt_handlers=handlers,
            ssl_context=self.config.server_tls(),
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1]) if self.server else 0

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
