"""The viewer's data: the worklist, one job's image, mask and heatmap as raw voxels, and
the risk of a patient's record (its probability, calibration note, referral flag and the
contributing events the study page draws as a timeline; a record has no voxels), and the
result of a text model on a note (labels, entities with their assertion context: the page
fetches the de-identified note the model scored, ``note.txt`` in the result, through the
job-file route and highlights the entities in it).

Who may read what is the job API's rule (`job_view.readable_job`): the same jobs, the same
404 for one that may not be read. Every read is audited before it is answered: a job's data
with `routes_jobs.audited_read` (``result_view``, target ``JOB/viewer...``), the worklist as
``worklist_view``.

Voxel routes answer ``application/octet-stream`` on the de-identified input's grid, axis order
``[z, y, x]`` (slice, row, column), C order, with ``X-Shape`` and ``X-Spacing`` (mm) headers
as ``z,y,x``:

- ``/viewer/image``: little-endian int16, the input's values rounded and clipped (Hounsfield
  units for CT; a colour image as its channel mean);
- ``/viewer/mask``: uint8 label values as stored in the result's NIfTI, 0 = background
  (``labels`` in the meta maps values to structure names);
- ``/viewer/heatmap``: uint8, the Grad-CAM map (0..1) scaled to 0..255.

Sizes are checked from the files' headers against ``max_voxels`` before anything is decoded
(413 ``payload_too_large``). Patient labels of a study that came over DICOM are decrypted in
memory for admins and clinicians only (a service account is a machine: it gets none).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import nibabel as nib
import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from medsight.errors import InputError
from medsight.imaging.io.limits import ReadLimits
from medsight.imaging.io.nifti import read_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.serve.api.errors import ApiError
from medsight.serve.api.routes.jobs import audited_read
from medsight.serve.api.state import ServiceState, client_address, service_state
from medsight.serve.auth.dependencies import Principal, require
from medsight.serve.jobs.job_view import job_json, readable_jobs, stored_result
from medsight.serve.jobs.worker import input_path, result_dir
from medsight.serve.store.audit import AuditEvent, append, commit_audited
from medsight.serve.store.deidentified_input import RECORD_KINDS, TEXT_KINDS
from medsight.serve.store.reidentification import record_key, unseal
from medsight.serve.store.schema import DicomSeries, Job
from medsight.serve.viewer.routes import ViewerRoute
from medsight.tasks.results import RiskResult, SegmentationResult, TextResult

router = APIRouter(route_class=ViewerRoute)
Reader = Annotated[Principal, Depends(require("admin", "clinician", "service"))]

#: result files as the imaging tasks write them (`segment_predict.NIFTI_FILE` and
#: `STRUCTURES_FILE`, `explain_run.HEATMAP_FILE`), written out: importing those modules would
#: import torch when the service starts (tests/serve/test_serve_start.py checks they agree)
MASK_FILE = "segmentation/segmentation.nii.gz"
HEAT_FILE = "heatmap/heatmap.nii.gz"
LABELS_FILE = "segmentation/structures.json"
#: the labels of a DICOM study the viewer shows (the sealed record holds a few more)
DISPLAY_FIELDS = ("PatientName", "PatientID", "StudyDate", "SeriesDescription", "Modality")
MODEL_CARD = "model_card.md"
MAX_CARD_BYTES = 256 * 1024
REFRESH_SECONDS = 10
#: what the result panel shows of a `RiskResult` (besides task, refer and seconds)
RISK_FIELDS = (
    "risk",
    "probability",
    "threshold",
    "calibration",
    "uncertain",
    "contributions",
    "prediction_time",
    "label_definition",
    "network",
)
#: what the result panel shows of a `TextResult` (besides task, network and seconds)
TEXT_FIELDS = ("labels", "entities", "sections", "deidentified")
#: the copy of the (de-identified) note a text model writes into its result folder
NOTE_FILE = "note.txt"


# ---------------------------------------------------------------- reading


def _millilitres(structure: dict[str, Any]) -> str:
    """A volume as the study page shows it: 0.1 mL, or 0.01 mL under 1 mL."""
    try:
        value = float(structure.get("volume_ml", 0.0))
    except (TypeError, ValueError):
        return "? mL"
    return f"{value:.2f}\u00a0mL" if abs(value) < 0.995 else f"{value:.1f}\u00a0mL"


def _read_limits(state: ServiceState) -> ReadLimits:
    return ReadLimits(max_voxels=state.settings.max_voxels)


def _too_large(state: ServiceState) -> ApiError:
    return ApiError("payload_too_large", f"the image holds over {state.settings.max_voxels} voxels")


def _read(state: ServiceState, path: Path, nifti: bool) -> Volume:
    """Read an image, its size checked from its header first.

    Raises:
        ApiError: ``not_found`` when the file is gone; ``payload_too_large`` past
            ``max_voxels`` (or another read limit); ``invalid_input`` when it cannot be read.
    """
    if not path.exists():
        raise ApiError("not_found", "the job's files are no longer stored")
    limits = _read_limits(state)
    try:
        return read_nifti(path, limits) if nifti else read_image(path, limits=limits)
    except InputError as exc:
        # every size refusal of the readers names the limit it hit, as "(ReadLimits.NAME)"
        if "(ReadLimits." in str(exc):
            raise _too_large(state) from None
        raise ApiError("invalid_input", "the stored image cannot be read") from None


def _nifti_shape(path: Path) -> tuple[int, ...] | None:
    """``(z, y, x)`` of a NIfTI file from its header alone, or None if it is not readable."""
    try:
        image: Any = nib.load(str(path))
        shape = tuple(int(d) for d in image.shape)
    except Exception:  # nibabel raises many types for bad headers
        return None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return tuple(reversed(shape)) if len(shape) == 3 else None


def _voxels(array: np.ndarray, volume: Volume, dtype: str) -> Response:
    z, y, x = volume.shape
    headers = {
        "X-Shape": f"{z},{y},{x}",
        "X-Spacing": ",".join(f"{s:g}" for s in volume.spacing_mm),
    }
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()
    return Response(data, media_type="application/octet-stream", headers=headers)


def _listed(job: Job, name: str) -> bool:
    return name in (job.result or {}).get("files", [])


def _layer_file(state: ServiceState, job: Job, name: str) -> Path:
    if not _listed(job, name):
        raise ApiError("not_found", "this job's result has no such layer")
    return result_dir(state.settings.data_dir, job.id) / name


# ---------------------------------------------------------------- labels and cards


def _display(state: ServiceState, rows: Iterable[DicomSeries]) -> dict[int, dict[str, str]]:
    """Decrypted viewer labels by series row id; rows that do not decrypt are left out."""
    key = record_key(state.deid_policy.key)
    labels = {}
    for row in rows:
        if row.display is None:
            continue
        try:
            record = unseal(row.display, key)
        except ValueError:  # sealed under another key: the study shows without labels
            continue
        labels[row.id] = {k: str(record.get(k, "")) for k in DISPLAY_FIELDS}
    return labels


def _sees_labels(principal: Principal) -> bool:
    return principal.role in ("admin", "clinician")


def _job_labels(
    state: ServiceState, principal: Principal, job_ids: list[str]
) -> dict[str, dict[str, str]]:
    if not job_ids or not _sees_labels(principal):
        return {}
    with state.db.session() as session:
        rows = session.execute(select(DicomSeries).where(DicomSeries.job_id.in_(job_ids)))
        rows_list = list(rows.scalars())
    labels = _display(state, rows_list)
    return {row.job_id: labels[row.id] for row in rows_list if row.job_id and row.id in labels}


def _model_card(state: ServiceState, job: Job) -> str | None:
    """The model card text of the job's model version, if its run had one (checked files)."""
    try:
        card = state.registry.verified_path(job.model_name, job.model_version) / MODEL_CARD
    except InputError:
        return None
    if not card.is_file():
        return None
    with open(card, "rb") as f:
        return f.read(MAX_CARD_BYTES).decode("utf-8", "replace")


def _model_entry(state: ServiceState, job: Job) -> dict[str, Any]:
    try:
        return state.registry.entry(job.model_name, job.model_version)
    except InputError:
        return {}


def _mask_labels(state: ServiceState, job: Job, class_names: list[str]) -> list[dict[str, Any]]:
    """``[{"value", "name"}]`` of the mask's structures (from ``structures.json``)."""
    values: dict[str, int] = {}
    if _listed(job, LABELS_FILE):
        path = result_dir(state.settings.data_dir, job.id) / LABELS_FILE
        try:
            values = json.loads(path.read_text(encoding="utf-8")).get("label_values", {})
        except (OSError, ValueError, AttributeError):
            values = {}
    names = list(values) or class_names[1:] or list((job.result or {}).get("structures", {}))
    return [{"value": int(values.get(n, i)), "name": n} for i, n in enumerate(names, start=1)]


# ---------------------------------------------------------------- summaries


def _utc(at: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes (stored as UTC); PostgreSQL aware ones in its own zone
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else _utc(at).isoformat(timespec="seconds")


def _risk_summary(result: RiskResult) -> str:
    line = f"risk {result.probability:.0%} (threshold {result.threshold:.0%})"
    return line + ("; refer" if result.refer else "")


def _text_summary(result: TextResult) -> str:
    """``sentiment: positive (91%); 4 entities, 1 negated``: a text model's result in a line."""
    parts = [
        f"{name}: {label.label} ({label.probability:.0%})" for name, label in result.labels.items()
    ][:3]
    if len(result.labels) > 3:
        parts.append(f"{len(result.labels)} labels")
    if result.entities or not result.labels:
        n = len(result.entities)
        negated = sum(e.negation == "negated" for e in result.entities)
        parts.append(
            f"{n} entit{'y' if n == 1 else 'ies'}" + (f", {negated} negated" if negated else "")
        )
    return "; ".join(parts)


def _summary(result: dict[str, Any] | None) -> str:
    """One line for the worklist: the predicted class, the structures found, the risk, or a
    note's labels and entities."""
    if not result:
        return ""
    record = stored_result(result)
    if isinstance(record, RiskResult):
        return _risk_summary(record)
    if isinstance(record, TextResult):
        return _text_summary(record)
    if isinstance(record, SegmentationResult):
        parts = []
        for name, s in result.get("structures", {}).items():
            n = int(s.get("n_components", 0))
            parts.append(f"{name}: {n} component{'s' if n != 1 else ''}, {_millilitres(s)}")
        return "; ".join(parts)
    predicted = result.get("predicted", "")
    p = result.get("probabilities", {}).get(predicted)
    line = f"{predicted} ({p:.0%})" if isinstance(p, float) else str(predicted)
    if result.get("refer"):
        line += "; refer to a clinician"
    return line


def _result_view(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the result panel shows (no file names, no links)."""
    if result is None:
        return None
    keep = (
        "task",
        "predicted",
        "probabilities",
        "conformal_set",
        "refer",
        "structures",
        "seconds",
        *RISK_FIELDS,
        *TEXT_FIELDS,
    )
    return {k: result[k] for k in keep if k in result}


def _window(volume: Volume) -> dict[str, float]:
    """The "auto" window: the 1st..99th percentile of the values (of up to ~16 slices)."""
    values = volume.array[:: max(1, volume.shape[0] // 16)]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"width": 1.0, "level": 0.0}
    low, high = (float(v) for v in np.percentile(finite, [1, 99]))
    return {"width": max(high - low, 1.0), "level": (high + low) / 2}


def _display_flip(volume: Volume) -> dict[str, bool]:
    """Flips that show a slice the radiological way.

    The screen's right is the patient's left (axial, coronal) or back (sagittal), its
    bottom the patient's back (axial) or feet (coronal, sagittal): each in-plane axis is
    flipped when it runs the other way along the patient axis it mostly follows (LPS+).
    """
    columns, rows = volume.direction[:, 0], volume.direction[:, 1]
    along_columns, along_rows = int(np.argmax(np.abs(columns))), int(np.argmax(np.abs(rows)))
    # rows along S/I should run to the feet, i.e. towards -S
    rows_reversed = rows[along_rows] > 0 if along_rows == 2 else rows[along_rows] < 0
    return {"columns": bool(columns[along_columns] < 0), "rows": bool(rows_reversed)}


# ---------------------------------------------------------------- routes


@router.get("/v1/worklist")
def worklist(request: Request, principal: Reader, limit: int = 100) -> dict[str, Any]:
    """The studies the caller may read, newest first, for the viewer's worklist.

    Jobs (state queued, running, done or failed; model; task; a one-line result) and, for
    admins and clinicians, series still arriving over DICOM (state ``received``), with the
    decrypted patient and series labels of DICOM studies. Audited as ``worklist_view``.
    """
    state = service_state(request)
    limit = max(1, min(limit, 500))
    with state.db.session() as session:
        jobs = list(session.execute(readable_jobs(principal, limit)).scalars())
        arriving: list[DicomSeries] = []
        if _sees_labels(principal):
            arriving = list(
                session.execute(
                    select(DicomSeries)
                    .where(DicomSeries.state == "receiving")
                    .order_by(DicomSeries.first_received.desc())
                    .limit(limit)
                ).scalars()
            )
    labels = _job_labels(state, principal, [job.id for job in jobs])
    tasks: dict[tuple[str, str], str] = {}
    items: list[tuple[dt.datetime, dict[str, Any]]] = []
    for job in jobs:
        key = (job.model_name, job.model_version)
        if key not in tasks:
            tasks[key] = str(_model_entry(state, job).get("task", ""))
        error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
        item = {
            "kind": "job",
            "job_id": job.id,
            "state": job.state,
            "model": {"name": job.model_name, "version": job.model_version},
            "task": (job.result or {}).get("task") or tasks[key],
            "created": _iso(job.created),
            "finished": _iso(job.finished),
            "summary": _summary(job.result),
            "refer": (job.result or {}).get("refer"),
            "error": error,
            "display": labels.get(job.id),
        }
        items.append((_utc(job.created), item))
    series_labels = _display(state, arriving)
    for row in arriving:
        n = row.instances
        item = {
            "kind": "series",
            "job_id": None,
            "state": "received",
            "model": None,
            "task": "",
            "created": _iso(row.first_received),
            "finished": None,
            "summary": f"{n} instance{'s' if n != 1 else ''} received",
            "refer": None,
            "error": None,
            "display": series_labels.get(row.id),
        }
        items.append((_utc(row.first_received), item))
    items.sort(key=lambda pair: pair[0], reverse=True)
    listed = [item for _, item in items[:limit]]
    with state.db.write() as session:
        append(
            session,
            AuditEvent(
                actor=principal.name,
                role=principal.role,
                action="worklist_view",
                outcome="ok",
                client=client_address(request),
                target=f"{len(listed)} items",
            ),
        )
        commit_audited(session)
    return {"items": listed, "refresh_seconds": REFRESH_SECONDS}


@router.get("/v1/jobs/{job_id}/viewer")
def viewer_meta(job_id: str, request: Request, principal: Reader) -> dict[str, Any]:
    """What the study page needs: grid, layers, legend, result, model card, labels.

    ``layers`` says which voxel routes will answer; a mask or heatmap is offered only when
    its NIfTI is on the input's grid. An input that cannot be read leaves ``image`` off and
    says why in ``image_error`` (the job and its error are still shown).

    Raises:
        ApiError: ``not_found`` for a job the caller may not read; ``payload_too_large``
            when the input is over ``max_voxels``.
    """
    job = audited_read(request, principal, job_id, "viewer")
    state = service_state(request)
    body = job_json(job)
    entry = _model_entry(state, job)
    class_names = [str(c) for c in entry.get("classes", [])]
    meta: dict[str, Any] = {
        "job_id": job.id,
        "state": job.state,
        "model": body["model"],
        "task": (job.result or {}).get("task") or entry.get("task", ""),
        "created": _iso(job.created),
        "finished": _iso(job.finished),
        "error": body.get("error"),
        "class_names": class_names,
        "result": _result_view(job.result),
        "model_card": _model_card(state, job),
        "display": _job_labels(state, principal, [job.id]).get(job.id),
        "layers": {"image": False, "mask": False, "heatmap": False},
        "labels": [],
    }
    source = input_path(state.settings.data_dir, job.id, job.input_kind)
    volume = None
    if job.input_kind in RECORD_KINDS:  # a patient's record: no image to show
        return meta
    if job.input_kind in TEXT_KINDS:  # a note: the page fetches the scored note's text
        meta["note_file"] = NOTE_FILE if _listed(job, NOTE_FILE) else None
        return meta
    if source.exists():
        try:
            volume = _read(state, source, nifti=False)
        except ApiError as exc:
            if exc.code != "invalid_input":
                raise
            # the job (failed, most likely) is still shown, without its image
            meta["image_error"] = exc.message
    if volume is not None:
        meta.update(
            shape=list(volume.shape),
            spacing_mm=[float(s) for s in volume.spacing_mm],
            modality=volume.modality,
            window=_window(volume),
            flip=_display_flip(volume),
        )
        meta["layers"]["image"] = True
        folder = result_dir(state.settings.data_dir, job.id)
        for layer, name in (("mask", MASK_FILE), ("heatmap", HEAT_FILE)):
            # a layer is offered only on the image's own grid
            if _listed(job, name) and _nifti_shape(folder / name) == volume.shape:
                meta["layers"][layer] = True
        if meta["layers"]["mask"]:
            meta["labels"] = _mask_labels(state, job, class_names)
    return meta


@router.get("/v1/jobs/{job_id}/viewer/image")
def viewer_image(job_id: str, request: Request, principal: Reader) -> Response:
    """The de-identified input as little-endian int16 ``[z, y, x]``."""
    job = audited_read(request, principal, job_id, "viewer/image")
    state = service_state(request)
    if job.input_kind in RECORD_KINDS or job.input_kind in TEXT_KINDS:
        raise ApiError("not_found", "this job's input is a record or a note, not an image")
    volume = _read(state, input_path(state.settings.data_dir, job.id, job.input_kind), False)
    array = volume.array.mean(axis=-1) if volume.channels != 1 else volume.array
    array = np.clip(np.rint(np.nan_to_num(array)), -32768, 32767)
    return _voxels(array, volume, "<i2")


@router.get("/v1/jobs/{job_id}/viewer/mask")
def viewer_mask(job_id: str, request: Request, principal: Reader) -> Response:
    """The segmentation's label values as uint8 ``[z, y, x]`` (0 = background).

    Raises:
        ApiError: ``not_found`` when the job has no segmentation; ``invalid_input`` when its
            labels do not fit in a byte.
    """
    job = audited_read(request, principal, job_id, "viewer/mask")
    state = service_state(request)
    volume = _read(state, _layer_file(state, job, MASK_FILE), nifti=True)
    labels = np.rint(np.nan_to_num(volume.array))
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ApiError("invalid_input", "the mask's label values do not fit in one byte")
    return _voxels(labels, volume, "u1")


@router.get("/v1/jobs/{job_id}/viewer/heatmap")
def viewer_heatmap(job_id: str, request: Request, principal: Reader) -> Response:
    """The heatmap (0..1) as uint8 ``[z, y, x]`` scaled to 0..255.

    Raises:
        ApiError: ``not_found`` when the job has no heatmap.
    """
    job = audited_read(request, principal, job_id, "viewer/heatmap")
    state = service_state(request)
    volume = _read(state, _layer_file(state, job, HEAT_FILE), nifti=True)
    heat = np.rint(np.clip(np.nan_to_num(volume.array), 0.0, 1.0) * 255.0)
    return _voxels(heat, volume, "u1")
