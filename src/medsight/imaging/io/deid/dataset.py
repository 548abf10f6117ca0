"""De-identify one DICOM dataset: Table E.1-1 applied at every depth, then the method recorded.

Every element, at the top level and inside sequence items at any depth, gets one action:

* private (odd group) elements: removed (``remove_private``, default) or kept unreviewed;
* overlay groups 60xx: removed whole. The table lists only Overlay Data and Overlay Comments;
  Overlay Label and Description are free text too, and nothing else in the group is useful
  without the data;
* group-length elements (gggg,0000): removed (retired, and wrong after editing);
* an element listed in the table: its Basic Profile action (compound codes resolved as in
  `profile_table`), unless an option of the policy retains it (K) or shifts it (C);
* anything else: kept, and if it is a sequence its items are processed the same way.

Actions: X removes; Z leaves a zero-length value (an empty sequence for SQ); D puts a dummy
(`dummy_values`), except that UIDs get their keyed hash and Patient ID a keyed pseudonym, so
patient-level splits still work; U replaces each UID by its keyed hash (for a sequence:
processes its items); C shifts DA/DT values by the patient's offset, falling back to the Basic
Profile action for values that cannot be shifted; K keeps. Elements pydicom cannot type (VR
UN, tags newer than its dictionary) get Z for D, since no dummy can be made valid for them.

The file meta is rebuilt with only what a reader needs: the SOP class, the new SOP Instance
UID as Media Storage SOP Instance UID, the transfer syntax (pydicom adds its implementation
UID on writing); Source AE titles and other meta elements are dropped. The 128-byte preamble
is zeroed. Pixel data is not examined: screen instances with `quarantine_reason` first.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from medsight.imaging.io.deid.date_shift import shift_da, shift_dt
from medsight.imaging.io.deid.dummy_values import dummy_value
from medsight.imaging.io.deid.keyed_hash import date_offset_days, hashed_uid, pseudonym
from medsight.imaging.io.deid.method_attributes import mark_deidentified
from medsight.imaging.io.deid.policy import DeidPolicy
from medsight.imaging.io.deid.profile_table import Action, ProfileTable, basic_profile
from medsight.imaging.io.deid.silence import pydicom_silenced

PATIENT_ID = Tag("PatientID")
_MEDIA_STORAGE_SOP_INSTANCE_UID = Tag("MediaStorageSOPInstanceUID")


@dataclass
class _Run:
    """What every element of one dataset is de-identified with."""

    policy: DeidPolicy
    table: ProfileTable
    date_offset_days: int
    counts: Counter[str]


def deidentify_dataset(
    ds: Dataset, policy: DeidPolicy, action_counts: Counter[str] | None = None
) -> Dataset:
    """A de-identified copy of ``ds`` (``ds`` itself is not modified).

    Args:
        ds: a dataset, with or without file meta.
        policy: key and options.
        action_counts: if given, incremented per action applied (``X``, ``Z``, ``D``, ``U``,
            ``K`` for option-retained, ``C`` for date-shifted) to table-listed, private and
            overlay elements.

    Returns:
        The copy, with PatientIdentityRemoved, DeidentificationMethod and
        DeidentificationMethodCodeSequence set.
    """
    with pydicom_silenced():
        out = copy.deepcopy(ds)
        patient_id = str(ds.get("PatientID", "") or "")
        run = _Run(
            policy,
            basic_profile(),
            date_offset_days(patient_id, policy.key),
            action_counts if action_counts is not None else Counter(),
        )
        _clean(out, run)
        meta = getattr(out, "file_meta", None)
        if meta is not None:
            out.file_meta = _rebuilt_meta(meta, out, run)
        if isinstance(out, FileDataset) and out.preamble is not None:
            out.preamble = bytes(128)
        mark_deidentified(out, policy)
    return out


def _clean(ds: Dataset, run: _Run) -> None:
    for tag in list(ds.keys()):
        if tag.element == 0 and tag.group != 0x0000:
            del ds[tag]  # group length: retired, and wrong once the group is edited
            continue
        elem = ds[tag]
        action = _decide(elem, run)
        if action is None:
            if elem.VR == "SQ":
                _clean_items(elem, run)
            continue
        run.counts[action] += 1
        _apply(ds, elem, action, run)


def _clean_items(elem: DataElement, run: _Run) -> None:
    for item in elem.value or []:
        _clean(item, run)


def _decide(elem: DataElement, run: _Run) -> Action | None:
    """The action for ``elem``; None when neither the table nor the policy governs it."""
    tag: BaseTag = elem.tag
    policy = run.policy
    if tag.is_private:
        return "X" if policy.remove_private else "K"
    if tag.group & 0xFF00 == 0x6000:
        return "X"
    row = run.table.lookup(tag)
    if row is None:
        return None
    if policy.keep_patient_characteristics and row.rtn_pat_chars_opt == "K":
        return "K"
    if policy.dates != "remove" and row.is_longitudinal:
        if policy.dates == "keep" or elem.VR == "TM":
            return "K"
        if _shifted(elem, run.date_offset_days) is not None:
            return "C"
    return row.basic_action


def _apply(ds: Dataset, elem: DataElement, action: Action, run: _Run) -> None:
    tag, vr = elem.tag, elem.VR.split(" or ")[0]
    if action == "X":
        del ds[tag]
    elif action == "Z" or (action == "D" and vr == "UN"):
        ds[tag] = DataElement(tag, vr, _empty(vr))
    elif action == "D":
        ds[tag] = DataElement(tag, vr, _dummy(elem, vr, run))
    elif action == "U":
        if vr == "SQ":
            _clean_items(elem, run)
        elif vr in ("UI", "UN"):
            elem.value = _hashed_uids(elem.value, run.policy.key)
        else:
            ds[tag] = DataElement(tag, vr, _empty(vr))
    elif action == "C":
        elem.value = _shifted(elem, run.date_offset_days)
    elif vr == "SQ":  # K
        _clean_items(elem, run)


def _empty(vr: str) -> object:
    return Sequence() if vr == "SQ" else empty_value_for_VR(vr)


def _dummy(elem: DataElement, vr: str, run: _Run) -> object:
    if vr == "UI":
        return _hashed_uids(elem.value, run.policy.key)
    if elem.tag == PATIENT_ID:
        return pseudonym(str(elem.value or ""), run.policy.key, "PatientID")
    return dummy_value(vr)


def _values(value: object) -> list[str]:
    """The values of an element as text (bytes of a UN element decoded, split on ``\\``)."""
    if value is None:
        return []
    if isinstance(value, bytes):
        text = value.decode("ascii", errors="replace").strip(" \x00")
        return text.split("\\") if text else []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _hashed_uids(value: object, key: str) -> object:
    """Each UID of ``value`` replaced by its keyed hash (bytes stay bytes, for VR UN)."""
    mapped = [hashed_uid(v, key) if v.strip(" \x00") else "" for v in _values(value)]
    if isinstance(value, bytes):
        text = "\\".join(mapped).encode("ascii")
        return text + b"\x00" * (len(text) % 2)
    if not mapped:
        return value
    return mapped[0] if len(mapped) == 1 else mapped


def _shifted(elem: DataElement, days: int) -> object | None:
    """``elem``'s DA/DT value(s) shifted by ``days``; None if any cannot be shifted."""
    shift = {"DA": shift_da, "DT": shift_dt}.get(elem.VR)
    if shift is None or isinstance(elem.value, bytes):
        return None
    values = _values(elem.value)
    shifted = [shift(v, days) for v in values]
    if not values or any(s is None for s in shifted):
        return None
    return shifted[0] if len(shifted) == 1 else shifted


def _rebuilt_meta(old: FileMetaDataset, ds: Dataset, run: _Run) -> FileMetaDataset:
    meta = FileMetaDataset()
    sop_class = old.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID")
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    if _MEDIA_STORAGE_SOP_INSTANCE_UID in old:
        run.counts["U"] += 1
        original = str(old.MediaStorageSOPInstanceUID or "")
        new_uid = str(ds.get("SOPInstanceUID") or hashed_uid(original, run.policy.key))
        meta.MediaStorageSOPInstanceUID = UID(new_uid)
    if "TransferSyntaxUID" in old:
        meta.TransferSyntaxUID = old.TransferSyntaxUID
    return meta
