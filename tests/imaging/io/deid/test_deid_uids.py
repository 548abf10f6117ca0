"""Keyed UIDs: valid, consistent in a series and across runs under one key, unlinkable otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medsight.imaging.io.deid import DeidPolicy, deidentify_dataset, deidentify_tree, hashed_uid
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

KEY_A = "key-A-for-uid-tests-000"
KEY_B = "key-B-for-uid-tests-111"
UID_PATTERN = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")
_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID")


@pytest.fixture(scope="module")
def synth_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CT series (one patient, two studies) of the synthetic generator."""
    out = tmp_path_factory.mktemp("uids") / "in"
    write_chest_ct_dataset(out, 2, seed=3, workers=1)
    return out


def _uids(folder: Path) -> dict[str, dict[str, str]]:
    """Per relative path: the UIDs of each written file (and its media storage UID)."""
    found = {}
    for path in sorted(folder.rglob("*.dcm")):
        ds = dcmread(path)
        uids = {k: str(ds.get(k)) for k in _UID_KEYWORDS}
        uids["MediaStorageSOPInstanceUID"] = str(ds.file_meta.MediaStorageSOPInstanceUID)
        found[path.relative_to(folder).as_posix()] = uids
    return found


def test_series_uids_are_replaced_consistently(synth_in: Path, tmp_path: Path) -> None:
    summary = deidentify_tree(synth_in, tmp_path / "out", DeidPolicy(key=KEY_A))
    assert summary.files_errored == 0 and summary.files_written > 0
    before, after = _uids(synth_in), _uids(tmp_path / "out")
    assert before.keys() == after.keys()  # same layout: folders and file names mirrored
    for case in ("series/case_0001", "series/case_0002"):
        files = [p for p in after if p.startswith(case)]
        assert len(files) > 1
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            assert len({after[p][keyword] for p in files}) == 1
        assert len({after[p]["SOPInstanceUID"] for p in files}) == len(files)
    for path, new in after.items():
        assert new["MediaStorageSOPInstanceUID"] == new["SOPInstanceUID"]
        for keyword in _UID_KEYWORDS:
            assert UID_PATTERN.match(new[keyword]) and len(new[keyword]) <= 64
            assert new[keyword] != before[path][keyword]
            assert new[keyword] == hashed_uid(before[path][keyword], KEY_A)


def test_same_key_links_runs_and_other_key_does_not(synth_in: Path, tmp_path: Path) -> None:
    deidentify_tree(synth_in, tmp_path / "a1", DeidPolicy(key=KEY_A))
    deidentify_tree(synth_in, tmp_path / "a2", DeidPolicy(key=KEY_A))
    deidentify_tree(synth_in, tmp_path / "b", DeidPolicy(key=KEY_B))
    a1, a2, b = (_uids(tmp_path / name) for name in ("a1", "a2", "b"))
    assert a1 == a2
    values_a = {v for uids in a1.values() for v in uids.values()}
    values_b = {v for uids in b.values() for v in uids.values()}
    assert values_a.isdisjoint(values_b)


def test_references_inside_sequences_follow_their_targets() -> None:
    policy = DeidPolicy(key=KEY_A)
    target = Dataset()
    target.SOPInstanceUID = "1.2.999.10.1"
    target.FrameOfReferenceUID = "1.2.999.10.2"
    referring = Dataset()
    referring.SOPInstanceUID = "1.2.999.10.3"
    image_ref = Dataset()
    image_ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    image_ref.ReferencedSOPInstanceUID = "1.2.999.10.1"
    referring.ReferencedImageSequence = Sequence([image_ref])
    instance_ref = Dataset()
    instance_ref.ReferencedSOPInstanceUID = "1.2.999.10.1"
    series_ref = Dataset()
    series_ref.ReferencedInstanceSequence = Sequence([instance_ref])
    referring.ReferencedSeriesSequence = Sequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = "1.2.999.10.2"
    referring.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])

    new_target = deidentify_dataset(target, policy)
    new_referring = deidentify_dataset(referring, policy)

    new_sop = new_target.SOPInstanceUID
    assert new_sop != target.SOPInstanceUID
    assert new_referring.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_sop
    # a class UID names a standard, not an instance: kept
    assert new_referring.ReferencedImageSequence[0].ReferencedSOPClassUID == (
        "1.2.840.10008.5.1.4.1.1.2"
    )
    nested = new_referring.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert nested.ReferencedSOPInstanceUID == new_sop
    frame = new_referring.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    assert frame == new_target.FrameOfReferenceUID != target.FrameOfReferenceUID
    assert referring.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.999.10.1"


def test_multivalued_uids_are_each_replaced() -> None:
    ds = Dataset()
    ds.IrradiationEventUID = ["1.2.999.20.1", "1.2.999.20.2"]
    out = deidentify_dataset(ds, DeidPolicy(key=KEY_A))
    assert list(out.IrradiationEventUID) == [
        hashed_uid("1.2.999.20.1", KEY_A),
        hashed_uid("1.2.999.20.2", KEY_A),
    ]


def test_hashed_uid_is_a_valid_uuid_derived_uid() -> None:
    uids = {hashed_uid(f"1.2.3.{i}", KEY_A) for i in range(200)}
    assert len(uids) == 200
    for uid in uids:
        assert UID_PATTERN.match(uid) and len(uid) <= 64
    assert hashed_uid("1.2.3.4\x00", KEY_A) == hashed_uid("1.2.3.4", KEY_A)


def test_file_named_after_its_uid_is_renamed(synth_in: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    first = sorted((synth_in / "series" / "case_0001").glob("*.dcm"))[0]
    ds = dcmread(first)
    study, sop = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
    (src / study).mkdir(parents=True)
    (src / study / f"{sop}.dcm").write_bytes(first.read_bytes())
    deidentify_tree(src, tmp_path / "out", DeidPolicy(key=KEY_A))
    written = [p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.dcm")]
    expected = Path(hashed_uid(study, KEY_A)) / f"{hashed_uid(sop, KEY_A)}.dcm"
    assert written == [expected]
