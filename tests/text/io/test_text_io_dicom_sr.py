"""DICOM SR text content to a note: TEXT, CODE and NUM items with their concept names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.io.dicom_sr_text import read_sr_note
from medsight.text.io.read_notes import read_notes


def _write_sr(path: Path, text: str = "5 mm nodule in the right upper lobe, unchanged.") -> Path:
    """A Comprehensive SR written with highdicom: a report with findings and an impression."""
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code
    from pydicom.uid import CTImageStorage, generate_uid

    image = Dataset()
    image.SOPClassUID = CTImageStorage
    image.SOPInstanceUID = generate_uid()
    image.StudyInstanceUID = generate_uid()
    image.SeriesInstanceUID = generate_uid()
    image.PatientID = "MRN-SR-1"
    image.PatientName = "Canary^Sr"
    image.PatientBirthDate = "19500101"
    image.PatientSex = "F"
    image.StudyDate = "20240105"
    image.StudyTime = "101500"
    image.AccessionNumber = "A1"
    image.StudyID = "1"
    image.ReferringPhysicianName = ""
    image.Modality = "CT"
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    findings = hd.sr.ContainerContentItem(
        name=Code("121070", "DCM", "Findings"), relationship_type=contains
    )
    findings.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=Code("121071", "DCM", "Finding"), value=text, relationship_type=contains
            ),
            hd.sr.CodeContentItem(
                name=Code("121071", "DCM", "Finding"),
                value=Code("39607008", "SCT", "Lung nodule"),
                relationship_type=contains,
            ),
            hd.sr.NumContentItem(
                name=Code("81827009", "SCT", "Diameter"),
                value=5,
                unit=codes.UCUM.Millimeter,
                relationship_type=contains,
            ),
            hd.sr.PnameContentItem(
                name=Code("121008", "DCM", "Person Observer Name"),
                value="Canary^Doctor",
                relationship_type=contains,
            ),
        ]
    )
    impression = hd.sr.ContainerContentItem(
        name=Code("121072", "DCM", "Impression"), relationship_type=contains
    )
    impression.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=Code("121073", "DCM", "Impression"),
                value="Benign.",
                relationship_type=contains,
            )
        ]
    )
    root = hd.sr.ContainerContentItem(name=Code("18748-4", "LN", "Diagnostic imaging report"))
    root.ContentSequence = hd.sr.ContentSequence([findings, impression])
    sr = hd.sr.ComprehensiveSR(
        evidence=[image],
        content=root,
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid="1.2.826.0.1.3680043.8.498.1",
        instance_number=1,
        manufacturer="test",
        content_date=dt.date(2024, 1, 5),
        content_time=dt.time(11, 20, 30),
    )
    sr.save_as(path, enforce_file_format=True)
    return path


def test_an_sr_reads_as_an_indented_note_without_person_names(tmp_path: Path) -> None:
    note = read_sr_note(_write_sr(tmp_path / "report.dcm"))
    assert note.text == (
        "Diagnostic imaging report\n"
        "Findings:\n"
        "  Finding: 5 mm nodule in the right upper lobe, unchanged.\n"
        "  Finding: Lung nodule\n"
        "  Diameter: 5 mm\n"
        "Impression:\n"
        "  Impression: Benign."
    )
    assert "Canary" not in note.text
    assert (note.note_id, note.subject_id, note.kind) == (
        "1.2.826.0.1.3680043.8.498.1",
        "MRN-SR-1",
        "radiology",
    )
    assert note.time == dt.datetime(2024, 1, 5, 11, 20, 30)


def test_read_notes_dispatches_dcm_to_the_sr_reader(tmp_path: Path) -> None:
    [note] = list(read_notes(_write_sr(tmp_path / "r.dcm", "Clear lungs.")))
    assert "Finding: Clear lungs." in note.text


def test_non_sr_and_non_dicom_files_are_refused(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, generate_uid(), "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "ct.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match=r"ct\.dcm: not a DICOM Structured Report"):
        read_sr_note(tmp_path / "ct.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match=r"junk\.dcm: cannot be read as DICOM"):
        read_sr_note(tmp_path / "junk.dcm")


def test_an_oversized_sr_is_refused_before_it_is_read(
    tmp_path: Path, small_note_limit: int
) -> None:
    path = _write_sr(tmp_path / "big.dcm", "x" * 600)
    with pytest.raises(InputError, match=r"big\.dcm: .* bytes is over the 400-byte limit"):
        read_sr_note(path)
