"""What it takes to send a result back under the original patient and study, kept encrypted.

Received DICOM is de-identified before it is stored (keyed-hash UIDs, identifying
attributes removed), and the models and result writers only ever see that copy. The PACS,
though, files a result by the original StudyInstanceUID and patient. So for each received
series the node keeps a *re-identification record*: the original value of every UID it saw
(keyed by its de-identified replacement), the patient and study attributes a PACS matches on,
and the series description (routing may use it). The record is encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from the service's
de-identification key, stored in the database, decrypted in memory only to build the
outgoing objects, and erased once the results are delivered. Nothing re-identified is
ever written to disk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydicom.dataset import Dataset

from medsight.imaging.io.deid import hashed_uid

#: attributes copied back onto results (Patient and General Study modules)
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "StudyDescription",
)
#: attributes the de-identified result carries about its de-identification
DEID_MARKERS = (
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
)


def record_key(deid_key: str) -> bytes:
    """The Fernet key for re-identification records, derived from the de-identification key."""
    digest = hmac.new(deid_key.encode(), b"medsight re-identification record", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest())


def _uids(ds: Dataset) -> set[str]:
    found: set[str] = set()
    for element in ds:
        if element.VR == "UI" and element.value:
            values = element.value if isinstance(element.value, list | tuple) else [element.value]
            found.update(str(v) for v in values if v)
        elif element.VR == "SQ" and element.value:
            for item in element.value:
                found |= _uids(item)
    return found


def new_record(ds: Dataset) -> dict[str, Any]:
    """The attributes of ``ds`` (an original, identified instance) a result needs back."""
    attributes = {}
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in ds:
            value = ds[keyword].value
            attributes[keyword] = str(value) if value is not None else ""
    return {
        "attributes": attributes,
        "series_description": str(ds.get("SeriesDescription", "") or ""),
        "uids": {},
    }


DISPLAY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "Modality",
    "BodyPartExamined",
    "AccessionNumber",
)


def display_record(ds: Dataset) -> dict[str, str]:
    """The labels the viewer shows for a received series (identified: keep it sealed)."""
    return {k: str(ds.get(k, "") or "") for k in DISPLAY_KEYWORDS}


def add_instance(record: dict[str, Any], ds: Dataset, deid_key: str) -> None:
    """Remember the original of every UID in ``ds`` under its de-identified replacement."""
    mapping: dict[str, str] = record["uids"]
    meta = getattr(ds, "file_meta", None)
    originals = _uids(ds) | (_uids(meta) if meta is not None else set())
    for uid in originals:
        mapping[hashed_uid(uid, deid_key)] = uid


def seal(record: dict[str, Any], key: bytes) -> bytes:
    return Fernet(key).encrypt(json.dumps(record, separators=(",", ":")).encode())


def unseal(blob: bytes, key: bytes) -> dict[str, Any]:
    """The record in ``blob``.

    Raises:
        ValueError: the blob was not sealed with ``key`` or was altered.
    """
    try:
        record: dict[str, Any] = json.loads(Fernet(key).decrypt(blob))
    except InvalidToken:
        raise ValueError("re-identification record cannot be decrypted with this key") from None
    return record


def _map_uids(ds: Dataset, mapping: dict[str, str]) -> None:
    for element in ds:
        if element.VR == "UI" and element.value:
            if isinstance(element.value, list | tuple):
                element.value = [mapping.get(str(v), str(v)) for v in element.value]
            else:
                element.value = mapping.get(str(element.value), str(element.value))
        elif element.VR == "SQ" and element.value:
            for item in element.value:
                _map_uids(item, mapping)


def reidentify(ds: Dataset, record: dict[str, Any]) -> Dataset:
    """``ds`` (a result built on de-identified data) under the original patient and study.

    Every UID that is a de-identified replacement becomes its original (the study, the
    referenced series and instances, the frame of reference); the result's own new UIDs
    are untouched. Patient and study attributes are restored; the de-identification markers
    are removed, since the object now describes the identified patient. ``ds`` is changed
    in place and returned.
    """
    _map_uids(ds, record["uids"])
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _map_uids(meta, record["uids"])
    for keyword, value in record["attributes"].items():
        setattr(ds, keyword, value)
    for keyword in DEID_MARKERS:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


__all__ = [
    "add_instance",
    "new_record",
    "record_key",
    "reidentify",
    "seal",
    "unseal",
]
