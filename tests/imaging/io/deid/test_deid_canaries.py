"""Every attribute of Table E.1-1 carries a unique canary; none may survive de-identification.

The test file holds a canary value in every table attribute pydicom can write, at the top
level and again two sequence levels deep, plus private elements, curves, overlays, file meta
and preamble. After `deidentify_tree`, the raw output bytes are searched for each canary: only
attributes an option retains may still hold theirs (and those must).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medsight.imaging.io.deid import DeidPolicy, deidentify_tree, hashed_uid
from medsight.imaging.io.deid.profile_table import ProfileRow, basic_profile
from medsight.imaging.io.deid.silence import pydicom_silenced

KEY = "canary-test-key-0123456789"
# Sequences the table does not list: kept, so their items are de-identified in place.
OUTER_SQ, INNER_SQ = Tag("ReferencedSeriesSequence"), Tag("AnatomicRegionSequence")
_TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


@dataclass(frozen=True)
class Canary:
    """One planted value: where (tag, depth), and how to find it again."""

    tag: int
    depth: int
    vr: str
    value: object
    needle: bytes | None  # None: too short to search bytes for; checked by parsing instead
    row: ProfileRow | None


class CanaryFactory:
    """Unique, valid values per VR, each with the bytes that betray it in a file."""

    def __init__(self) -> None:
        self.n = 0

    def make(self, vr: str) -> tuple[object, bytes | None]:
        self.n += 1
        i = self.n
        if vr in _TEXT_VRS:
            text = f"CY{i:05d}Q"
            return text, text.encode()
        if vr == "AS":
            return f"{i % 1000:03d}W", f"{i % 1000:03d}W".encode()
        if vr == "DA":
            text = (dt.date(2031, 1, 1) + dt.timedelta(days=i)).strftime("%Y%m%d")
            return text, text.encode()
        if vr == "DT":
            text = (dt.date(2031, 1, 1) + dt.timedelta(days=i)).strftime("%Y%m%d") + "123456"
            return text, text.encode()
        if vr == "TM":
            text = f"23{i % 60:02d}{(i // 60) % 60:02d}.{i:06d}"
            return text, text.encode()
        if vr == "DS":
            return f"7.{i:05d}3", f"7.{i:05d}3".encode()
        if vr == "IS":
            return f"9{i:05d}7", f"9{i:05d}7".encode()
        if vr == "UI":
            text = f"1.2.999.7{i:05d}"
            return text, text.encode()
        if vr in ("US", "SS"):
            return 20000 + i, None
        if vr == "UL":
            return 0x7E3A0000 + i, struct.pack("<I", 0x7E3A0000 + i)
        if vr == "SL":
            return 0x5E3A0000 + i, struct.pack("<i", 0x5E3A0000 + i)
        if vr == "FL":
            value = 1.0e7 + i
            return value, struct.pack("<f", value)
        if vr == "FD":
            value = 1.0e9 + i + 0.25
            return value, struct.pack("<d", value)
        if vr in ("SV", "UV"):
            value = 0x7E3A000000000000 + i
            return value, struct.pack("<q", value)
        if vr == "AT":
            return 0x7E3A0000 + i, struct.pack("<HH", 0x7E3A, i)
        if vr in _BINARY_VRS:
            raw = b"CYB" + f"{i:05d}".encode() + b"QQQQQQQQ"
            return raw, raw
        raise AssertionError(f"no canary for VR {vr}")


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"  # newer than pydicom's dictionary: written as UN


def _plant_table(ds: Dataset, depth: int, factory: CanaryFactory, out: list[Canary]) -> None:
    for row in basic_profile().rows:
        if "x" in row.tag or row.tag == "(gggg,eeee)":
            continue
        tag = int(row.tag.strip("()").replace(",", ""), 16)
        if tag >> 16 in (0x0000, 0x0002):
            continue  # command elements cannot be written to files; meta is planted apart
        vr = _vr(tag)
        if vr == "SQ":
            item = Dataset()
            value, needle = factory.make("PN")
            item.PatientName = value
            ds.add(DataElement(tag, "SQ", Sequence([item])))
            out.append(Canary(0x00100010, depth + 1, "PN", value, needle, None))
            continue
        value, needle = factory.make(vr)
        ds.add(DataElement(tag, vr, value))
        out.append(Canary(tag, depth, vr, value, needle, row))


def _plant_private(ds: Dataset, depth: int, factory: CanaryFactory, out: list[Canary]) -> None:
    for tag, vr in ((0x00090010, "LO"), (0x00091001, "LO"), (0x00091002, "OB")):
        value, needle = factory.make(vr)
        ds.add(DataElement(tag, vr, value))
        out.append(Canary(tag, depth, vr, value, needle, basic_profile().private_row))
    item = Dataset()
    value, needle = factory.make("LO")
    item.add(DataElement(0x00190010, "LO", value))
    ds.add(DataElement(0x00091003, "SQ", Sequence([item])))
    out.append(Canary(0x00190010, depth + 1, "LO", value, needle, None))


def _canary_file(folder: Path) -> tuple[Path, list[Canary], str]:
    factory = CanaryFactory()
    canaries: list[Canary] = []
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    preamble = b"CYPREAMBLE" + bytes(118)
    ds = FileDataset(folder / "canary.dcm", {}, file_meta=meta, preamble=preamble)
    _plant_table(ds, 0, factory, canaries)
    _plant_private(ds, 0, factory, canaries)
    for tag, vr in ((0x50003000, "OB"), (0x50020010, "US"), (0x50022500, "LO")):
        value, needle = factory.make(vr)
        ds.add(DataElement(tag, vr, value))
        canaries.append(Canary(tag, 0, vr, value, needle, basic_profile().lookup(Tag(tag))))
    for tag, vr in ((0x60003000, "OW"), (0x60004000, "LT"), (0x60000022, "LO"), (0x60001500, "LO")):
        value, needle = factory.make(vr)
        ds.add(DataElement(tag, vr, value))
        canaries.append(Canary(tag, 0, vr, value, needle, basic_profile().lookup(Tag(tag))))
    inner = Dataset()
    _plant_table(inner, 2, factory, canaries)
    _plant_private(inner, 2, factory, canaries)
    ds.add(DataElement(OUTER_SQ, "SQ", Sequence([Dataset()])))
    ds[OUTER_SQ].value[0].add(DataElement(INNER_SQ, "SQ", Sequence([inner])))
    ds.SOPClassUID = CTImageStorage  # not in the table; a CT is not quarantined
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for tag, vr in ((0x00020016, "AE"), (0x00020100, "UI"), (0x00020102, "OB")):
        value, needle = factory.make(vr)
        meta.add(DataElement(tag, vr, value))
        canaries.append(Canary(tag, -1, vr, value, needle, None))
    sop_uid = str(ds.SOPInstanceUID)
    path = folder / "in" / "canary.dcm"
    path.parent.mkdir(parents=True)
    with pydicom_silenced():
        dcmwrite(path, ds, enforce_file_format=True)
    return path, canaries, sop_uid


def _retained(canary: Canary, policy: DeidPolicy) -> bool:
    """Whether ``policy`` keeps this canary by an option (the only allowed survivors)."""
    row = canary.row
    if row is None or canary.tag >> 16 & 1:
        return False
    if policy.keep_patient_characteristics and row.rtn_pat_chars_opt == "K":
        return True
    return policy.dates == "keep" and row.is_longitudinal


def _find(ds: Dataset, canary: Canary) -> object:
    holder = ds
    if canary.depth == 2:
        holder = ds[OUTER_SQ].value[0][INNER_SQ].value[0]
    elem = holder.get(canary.tag)
    return None if elem is None else elem.value


POLICIES = {
    "basic": DeidPolicy(key=KEY),
    "options": DeidPolicy(key=KEY, dates="keep", keep_patient_characteristics=True),
}


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_no_canary_survives_except_what_an_option_keeps(tmp_path: Path, policy_name: str) -> None:
    policy = POLICIES[policy_name]
    source, canaries, sop_uid = _canary_file(tmp_path)
    assert len(canaries) > 2 * 600
    original = source.read_bytes()
    assert original[:10] == b"CYPREAMBLE"
    assert all(c.needle in original for c in canaries if c.needle is not None)

    summary = deidentify_tree(source.parent, tmp_path / "out", policy)

    assert summary.files_written == 1 and summary.files_errored == 0
    out_files = [p for p in (tmp_path / "out").rglob("*.dcm")]
    assert len(out_files) == 1
    data = out_files[0].read_bytes()
    with pydicom_silenced():
        out = dcmread(out_files[0])
    leaked, lost = [], []
    for canary in canaries:
        if canary.needle is not None:
            present = canary.needle in data
        else:
            present = canary.depth >= 0 and _find(out, canary) == canary.value
        expected = _retained(canary, policy)
        if present and not expected:
            leaked.append((hex(canary.tag), canary.depth, canary.vr))
        if expected and not present:
            lost.append((hex(canary.tag), canary.depth, canary.vr))
    assert leaked == []
    assert lost == []
    if policy_name == "options":
        assert any(_retained(c, policy) for c in canaries)
    assert b"CYPREAMBLE" not in data and data[:128] == bytes(128)
    new_uid = hashed_uid(sop_uid, KEY)
    assert out.SOPInstanceUID == new_uid
    assert out.file_meta.MediaStorageSOPInstanceUID == new_uid
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_command_group_elements_are_handled_in_memory() -> None:
    ds = Dataset()
    ds.AffectedSOPInstanceUID = "1.2.999.1"
    ds.RequestedSOPInstanceUID = "1.2.999.2"
    from medsight.imaging.io.deid import deidentify_dataset

    out = deidentify_dataset(ds, DeidPolicy(key=KEY))
    assert "AffectedSOPInstanceUID" not in out
    assert out.RequestedSOPInstanceUID == hashed_uid("1.2.999.2", KEY)
