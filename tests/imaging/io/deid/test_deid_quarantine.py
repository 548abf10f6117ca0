"""Fail closed: burned-in risks are held back, odd files are skipped or reported, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    MediaStorageDirectoryStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
)

from medsight.errors import InputError
from medsight.imaging.io.deid import DeidPolicy, deidentify_tree, quarantine_reason
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

KEY = "quarantine-test-key-0123"


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One slice of a synthetic CT (carries synthetic patient identity)."""
    out = tmp_path_factory.mktemp("quarantine") / "synth"
    write_chest_ct_dataset(out, 1, seed=5, workers=1)
    return sorted((out / "series" / "case_0001").glob("*.dcm"))[0]


def _variant(ct_file: Path, dest: Path, **attributes: object) -> Path:
    ds = dcmread(ct_file)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if "SOPClassUID" in attributes:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(f"1.2.999.3.{len(dest.name)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest, enforce_file_format=True)
    return dest


@pytest.fixture()
def mixed_in(ct_file: Path, tmp_path: Path) -> Path:
    src = tmp_path / "in"
    _variant(ct_file, src / "ct" / "plain.dcm")
    _variant(ct_file, src / "ct" / "burned.dcm", BurnedInAnnotation="YES")
    _variant(ct_file, src / "sc" / "capture.dcm", SOPClassUID=SecondaryCaptureImageStorage)
    _variant(
        ct_file,
        src / "sc" / "declared_clean.dcm",
        SOPClassUID=SecondaryCaptureImageStorage,
        BurnedInAnnotation="NO",
    )
    (src / "notes.txt").write_text("not a DICOM file\n")
    _variant(ct_file, src / "DICOMDIR", SOPClassUID=MediaStorageDirectoryStorage)
    good = ct_file.read_bytes()
    at = good.index(b"\x08\x00\x05\x00CS")  # Specific Character Set, explicit VR
    (src / "broken.dcm").write_bytes(good[: at + 4] + b"\x01\x02" + good[at + 6 :])  # bad VR
    return src


def test_burned_in_and_secondary_capture_are_quarantined_not_written(
    mixed_in: Path, tmp_path: Path
) -> None:
    out, held = tmp_path / "out", tmp_path / "held"
    summary = deidentify_tree(mixed_in, out, DeidPolicy(key=KEY), quarantine_dir=held)

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert written == ["ct/plain.dcm", "sc/declared_clean.dcm"]
    for rel in ("ct/burned.dcm", "sc/capture.dcm"):
        assert not (out / rel).exists()
        assert (held / rel).read_bytes() == (mixed_in / rel).read_bytes()  # the original
    reasons = [json.loads(line) for line in (held / "reasons.jsonl").read_text().splitlines()]
    assert reasons == [
        {"path": "ct/burned.dcm", "reason": "burned_in_annotation"},
        {"path": "sc/capture.dcm", "reason": "sop_class_may_burn_in"},
    ]
    assert summary.files_found == 7
    assert summary.files_written == 2
    assert summary.files_quarantined == 2
    assert summary.quarantine_reasons == {"burned_in_annotation": 1, "sop_class_may_burn_in": 1}
    assert summary.files_skipped == 2
    assert summary.skip_reasons == {"not_dicom": 1, "dicomdir": 1}
    assert summary.files_errored == 1
    assert summary.errors[0].path == "broken.dcm"
    assert summary.errors[0].reason.startswith("unreadable")
    on_disk = json.loads((out / "deid_summary.json").read_text())
    assert on_disk["files_quarantined"] == 2 and on_disk["files_errored"] == 1
    assert KEY not in (out / "deid_summary.json").read_text()


def test_written_files_are_valid_and_marked(mixed_in: Path, tmp_path: Path) -> None:
    deidentify_tree(mixed_in, tmp_path / "out", DeidPolicy(key=KEY))
    ds = dcmread(tmp_path / "out" / "ct" / "plain.dcm")
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert "Basic Application Confidentiality Profile" in ds.DeidentificationMethod
    assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    assert (tmp_path / "out-quarantine" / "ct" / "burned.dcm").is_file()  # default location


def test_quarantine_rules() -> None:
    ds = Dataset()
    ds.SOPClassUID = UltrasoundImageStorage
    assert quarantine_reason(ds) == "sop_class_may_burn_in"
    ds.BurnedInAnnotation = "NO"
    assert quarantine_reason(ds) is None
    ds.RecognizableVisualFeatures = "YES"
    assert quarantine_reason(ds) == "recognizable_visual_features"
    ct = Dataset()
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    assert quarantine_reason(ct) is None
    with pydicom_silenced():  # pydicom warns about the lower-case CS value
        ct.BurnedInAnnotation = "yes "
    assert quarantine_reason(ct) == "burned_in_annotation"


@pytest.mark.parametrize(
    ("out_name", "held_name"),
    [("in/out", None), (".", None), ("out", "out/held"), ("out", "in/held")],
)
def test_overlapping_folders_are_refused(
    mixed_in: Path, tmp_path: Path, out_name: str, held_name: str | None
) -> None:
    held = tmp_path / held_name if held_name else None
    with pytest.raises(InputError):
        deidentify_tree(mixed_in, tmp_path / out_name, DeidPolicy(key=KEY), quarantine_dir=held)


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        deidentify_tree(tmp_path / "absent", tmp_path / "out", DeidPolicy(key=KEY))


def test_policy_refuses_weak_key_and_unknown_dates() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        DeidPolicy(key="short")
    with pytest.raises(ValueError, match="dates"):
        DeidPolicy(key=KEY, dates="blur")
    assert KEY not in repr(DeidPolicy(key=KEY))
