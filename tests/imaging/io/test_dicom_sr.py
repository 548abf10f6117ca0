"""Classification results as DICOM SR: filed in the source study, readable, deterministic.

The source is a tiny CT series whose files carry random names, so a report that followed
file names would list its evidence in another order on another copy and these tests would
see the bytes change.
"""

from __future__ import annotations

import datetime
import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.dicom_sr import (
    DISCLAIMER,
    ClassificationFinding,
    write_classification_sr,
)
from medsight.imaging.io.dicom_sr_read import read_classification_sr
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_ct import plan_cohort

SHA = "0123456789abcdef" * 4
FINDING = ClassificationFinding(
    predicted="nodule",
    probabilities={"normal": 0.125, "nodule": 0.625, "mass": 0.25},
    model_name="lungct-cnn",
    model_version="7",
    model_sha256=SHA,
    conformal_set=("nodule", "mass"),
    refer=True,
)


@dataclass(frozen=True)
class Source:
    folder: Path
    identity: StudyIdentity
    sr: Path


def _write_series(identity: StudyIdentity, folder: Path, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1000, size=(6, 16, 20)).astype(np.float32)
    direction = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    volume = Volume(array, (2.5, 0.8, 0.7), np.array([-5.0, 8.0, 30.0]), direction, "CT")
    written = write_ct_series(volume, identity, folder.parent / f"{folder.name}_written")
    folder.mkdir(parents=True)
    paths = []
    for k, path in zip(rng.permutation(len(written)), written, strict=True):
        paths.append(Path(shutil.copy(path, folder / f"{rng.integers(10**8):08d}_{k}.dcm")))
    return paths


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    identity = plan_cohort(1, seed=31)[0].identity
    root = tmp_path_factory.mktemp("sr")
    _write_series(identity, root / "series", seed=5)
    sr = write_classification_sr(root / "series", FINDING, root / "out" / "report.dcm")
    return Source(root / "series", identity, sr)


def _source_headers(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]


def test_report_is_filed_in_the_source_study(source: Source) -> None:
    sr = pydicom.dcmread(source.sr)
    ct = _source_headers(source.folder)
    assert sr.SOPClassUID == ComprehensiveSRStorage and sr.Modality == "SR"
    assert sr.StudyInstanceUID == ct[0].StudyInstanceUID == source.identity.study_uid
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"):
        assert sr[keyword].value == ct[0][keyword].value
    assert sr.PatientID == source.identity.patient_id
    assert sr.AccessionNumber == source.identity.accession_number
    assert sr.SeriesInstanceUID != ct[0].SeriesInstanceUID
    assert sr.SOPInstanceUID not in {ds.SOPInstanceUID for ds in ct}
    assert sr.Manufacturer == "medsight"
    assert sr.SeriesNumber == 902 and sr.SeriesDescription == "medsight classification"
    # Dated by the study, not by the clock; nobody has verified it.
    assert sr.ContentDate == source.identity.study_date
    assert "InstanceCreationDate" not in sr
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "COMPLETE",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence] == [
        "99MEDSIGHT"
    ]


def test_evidence_references_every_source_instance(source: Source) -> None:
    sr = pydicom.dcmread(source.sr)
    ct = _source_headers(source.folder)
    (study,) = sr.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == ct[0].StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == ct[0].SeriesInstanceUID
    referenced = {
        (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID)
        for ref in series.ReferencedSOPSequence
    }
    assert referenced == {(ds.SOPClassUID, ds.SOPInstanceUID) for ds in ct}
    assert len(series.ReferencedSOPSequence) == len(ct)
    assert "PertinentOtherEvidenceSequence" not in sr
    # The image library of the report lists the same instances.
    (library_item,) = [
        item
        for item in _walk(sr.ContentSequence)
        if item.ConceptNameCodeSequence[0].CodeValue == codes.DCM.ImageLibrary.value
    ]
    library = [
        image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for image in _walk(library_item.ContentSequence)
        if image.ValueType == "IMAGE"
    ]
    assert sorted(library) == sorted(ds.SOPInstanceUID for ds in ct)


def test_read_back_holds_the_whole_result(source: Source) -> None:
    record = read_classification_sr(source.sr)
    assert record["study_uid"] == source.identity.study_uid
    assert record["predicted"] == "nodule"
    assert record["probabilities"] == pytest.approx(
        {"normal": 0.125, "nodule": 0.625, "mass": 0.25}
    )
    assert list(record["probabilities"]) == ["normal", "nodule", "mass"]
    assert record["conformal_set"] == ["nodule", "mass"]
    assert record["refer"] is True
    assert record["model"] == {"name": "lungct-cnn", "version": "7", "sha256": SHA}
    assert record["disclaimer"] == DISCLAIMER
    assert sorted(record["evidence"]) == sorted(
        ds.SOPInstanceUID for ds in _source_headers(source.folder)
    )


def test_highdicom_parses_the_measurement_report(source: Source) -> None:
    for report in (
        hd.sr.srread(source.sr),
        hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(source.sr)),
    ):
        assert isinstance(report, hd.sr.ComprehensiveSR)
        assert isinstance(report.content, hd.sr.MeasurementReport)
        (group,) = report.content.get_image_measurement_groups()
        assert group.finding_type is not None and group.finding_type.meaning == "nodule"
        measurements = group.get_measurements(name=codes.DCM.Probability)
        assert [m.value for m in measurements] == pytest.approx([0.125, 0.625, 0.25])
        assert {m.unit.value for m in measurements} == {"1"}
        (observer,) = report.content.get_observer_contexts()
        assert observer.observer_type == codes.DCM.Device
        assert report.get_evidence_series() == [
            (source.identity.study_uid, source.identity.series_uid)
        ]


def test_text_a_reader_sees(source: Source) -> None:
    texts = {
        item.ConceptNameCodeSequence[0].CodeMeaning: str(item.TextValue)
        for item in _walk(pydicom.dcmread(source.sr).ContentSequence)
        if item.ValueType == "TEXT"
    }
    assert texts["Algorithm Name"] == "lungct-cnn"
    assert texts["Algorithm Version"] == "7"
    assert texts["Algorithm Parameters"] == f"sha256={SHA}"
    assert texts["Disclaimer"] == DISCLAIMER
    statement = texts["Qualitative Evaluations"]
    assert "nodule, mass" in statement and "Refer" in statement


def _walk(sequence: pydicom.Sequence) -> list[pydicom.Dataset]:
    items = []
    for item in sequence:
        items.append(item)
        if "ContentSequence" in item:
            items += _walk(item.ContentSequence)
    return items


def test_file_is_part10_and_survives_a_strict_rewrite(source: Source) -> None:
    raw = source.sr.read_bytes()
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(source.sr)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert again.SOPInstanceUID == ds.SOPInstanceUID
    assert len(again.ContentSequence) == len(ds.ContentSequence)


def test_same_inputs_give_identical_bytes(source: Source, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(source.folder, tmp_path / "copy"))
    for i, path in enumerate(sorted(copy.glob("*.dcm"), reverse=True)):
        path.rename(copy / f"renamed_{i:02d}.dcm")  # the reverse order by name
    again = write_classification_sr(copy, FINDING, tmp_path / "again.dcm")
    assert again.read_bytes() == source.sr.read_bytes()
    other = ClassificationFinding(
        predicted="mass",
        probabilities={"normal": 0.125, "nodule": 0.25, "mass": 0.625},
        model_name="lungct-cnn",
        model_version="7",
        model_sha256=SHA,
    )
    changed = pydicom.dcmread(write_classification_sr(source.folder, other, tmp_path / "o.dcm"))
    first = pydicom.dcmread(source.sr)
    assert changed.SeriesInstanceUID != first.SeriesInstanceUID
    assert changed.SOPInstanceUID != first.SOPInstanceUID


@pytest.mark.parametrize(
    ("conformal_set", "refer", "expected", "words"),
    [
        (None, False, None, "not calibrated"),
        ((), True, [], "empty"),
        (("nodule",), False, ["nodule"], "Not referred"),
    ],
)
def test_conformal_set_states_are_told_apart(
    source: Source,
    tmp_path: Path,
    conformal_set: tuple[str, ...] | None,
    refer: bool,
    expected: list[str] | None,
    words: str,
) -> None:
    finding = ClassificationFinding(
        predicted="nodule",
        probabilities={"normal": 0.2, "nodule": 0.8},
        model_name="m",
        model_version="1",
        model_sha256=SHA,
        conformal_set=conformal_set,
        refer=refer,
    )
    out = write_classification_sr(source.folder, finding, tmp_path / "sr.dcm")
    record = read_classification_sr(out)
    assert record["conformal_set"] == expected
    assert record["refer"] is refer
    texts = [
        str(i.TextValue)
        for i in _walk(pydicom.dcmread(out).ContentSequence)
        if i.ValueType == "TEXT"
    ]
    assert any(words in text for text in texts)


def test_long_class_names_keep_their_words(source: Source, tmp_path: Path) -> None:
    name = "ground-glass opacity, peripheral"
    finding = ClassificationFinding(
        predicted=name,
        probabilities={name: 0.9, "clear": 0.1},
        model_name="m",
        model_version="1",
        model_sha256=SHA,
    )
    out = write_classification_sr(source.folder, finding, tmp_path / "sr.dcm")
    record = read_classification_sr(out)
    assert record["predicted"] == name
    assert record["probabilities"] == pytest.approx({name: 0.9, "clear": 0.1})
    values = {
        i.ConceptCodeSequence[0].CodeValue
        for i in _walk(pydicom.dcmread(out).ContentSequence)
        if i.ValueType == "CODE" and i.ConceptCodeSequence[0].CodeMeaning == name
    }
    (value,) = values
    assert len(value) <= 16


def test_from_result_reads_a_service_record(source: Source, tmp_path: Path) -> None:
    result = {
        "task": "classify",
        "predicted": "nodule",
        "probabilities": {"normal": 0.125, "nodule": 0.625, "mass": 0.25},
        "conformal_set": ["nodule", "mass"],
        "refer": True,
        "model": {"name": "lungct-cnn", "version": "7", "sha256": SHA},
    }
    finding = ClassificationFinding.from_result(result)
    assert finding == FINDING
    out = write_classification_sr(source.folder, finding, tmp_path / "sr.dcm")
    assert out.read_bytes() == source.sr.read_bytes()
    with pytest.raises(InputError, match="model"):
        ClassificationFinding.from_result({"predicted": "a", "probabilities": {"a": 1.0}})


def test_given_content_datetime_is_used(source: Source, tmp_path: Path) -> None:
    when = datetime.datetime(2027, 3, 4, 5, 6, 7)
    out = write_classification_sr(
        source.folder, FINDING, tmp_path / "sr.dcm", content_datetime=when
    )
    sr = pydicom.dcmread(out)
    assert (sr.ContentDate, sr.ContentTime) == ("20270304", "050607")
    assert sr.StudyDate == source.identity.study_date


def test_single_file_source(tmp_path: Path) -> None:
    ct_small = Path(str(get_testdata_file("CT_small.dcm")))
    out = write_classification_sr(ct_small, FINDING, tmp_path / "sr.dcm")
    ct = pydicom.dcmread(ct_small, stop_before_pixels=True)
    sr = pydicom.dcmread(out)
    assert sr.StudyInstanceUID == ct.StudyInstanceUID and sr.PatientID == ct.PatientID
    assert read_classification_sr(out)["evidence"] == [ct.SOPInstanceUID]


def test_enhanced_multiframe_source(source: Source, tmp_path: Path) -> None:
    datasets = [pydicom.dcmread(p) for p in sorted(source.folder.glob("*.dcm"))]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets,
        series_instance_uid=deterministic_uid("mf-series"),
        series_number=3,
        sop_instance_uid=deterministic_uid("mf-instance"),
        instance_number=1,
    )
    mf = tmp_path / "enhanced.dcm"
    enhanced.save_as(mf)
    out = write_classification_sr(mf, FINDING, tmp_path / "sr.dcm")
    record = read_classification_sr(out)
    assert record["evidence"] == [deterministic_uid("mf-instance")]
    assert record["predicted"] == "nodule"


def test_folder_of_two_series_needs_a_choice(source: Source, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(source.folder, tmp_path / "two" / "a"))
    second = StudyIdentity(
        *[getattr(source.identity, f) for f in ("patient_name", "patient_id", "birth_date")],
        source.identity.sex,
        source.identity.age_years,
        source.identity.study_date,
        source.identity.accession_number,
        source.identity.study_uid,
        deterministic_uid("second series"),
        source.identity.frame_of_reference_uid,
    )
    _write_series(second, folder.parent / "b", seed=9)
    with pytest.raises(InputError, match="2 series"):
        write_classification_sr(folder.parent, FINDING, tmp_path / "sr.dcm")
    out = write_classification_sr(
        folder.parent, FINDING, tmp_path / "sr.dcm", series=deterministic_uid("second series")
    )
    sr = pydicom.dcmread(out)
    (study,) = sr.CurrentRequestedProcedureEvidenceSequence
    assert [s.SeriesInstanceUID for s in study.ReferencedSeriesSequence] == [
        deterministic_uid("second series")
    ]


def _finding(**changes: object) -> ClassificationFinding:
    fields: dict[str, object] = {
        "predicted": "nodule",
        "probabilities": {"normal": 0.25, "nodule": 0.75},
        "model_name": "m",
        "model_version": "1",
        "model_sha256": SHA,
    }
    fields.update(changes)
    return ClassificationFinding(**fields)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"probabilities": {"normal": 0.5, "nodule": 0.75}}, "sum to 1.25"),
        ({"probabilities": {"normal": 0.25, "nodule": 0.7}}, "sum to 0.95"),
        ({"probabilities": {}}, "no class probabilities"),
        ({"probabilities": {"normal": -0.25, "nodule": 1.25}}, "not in [0, 1]"),
        ({"probabilities": {"normal": float("nan"), "nodule": 1.0}}, "not in [0, 1]"),
        ({"predicted": "mass"}, "predicted class 'mass'"),
        ({"model_sha256": "abc"}, "SHA-256"),
        ({"model_sha256": SHA.upper()}, "SHA-256"),
        ({"model_name": ""}, "model name"),
        ({"model_version": "x" * 65}, "model version"),
        ({"conformal_set": ("mass",)}, "conformal set class 'mass'"),
        ({"conformal_set": ("nodule", "nodule")}, "repeats"),
        ({"probabilities": {"a\\b": 0.25, "nodule": 0.75}}, "class name"),
        ({"probabilities": {"normal": "high", "nodule": 0.75}}, "map class names to numbers"),
        ({"conformal_set": "nodule"}, "list of classes"),
    ],
)
def test_bad_findings_are_refused_in_one_line(changes: dict[str, object], words: str) -> None:
    with pytest.raises(InputError) as info:
        _finding(**changes)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_probabilities_within_float_rounding_of_one_are_accepted() -> None:
    probs = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    finding = _finding(
        predicted="c", probabilities={n: float(p) for n, p in zip("abc", probs, strict=True)}
    )
    assert finding.probabilities["c"] == pytest.approx(0.7)


def test_bad_sources_are_refused_and_nothing_written(source: Source, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not DICOM")
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    out = tmp_path / "sr.dcm"
    cases = [
        (empty, "no DICOM image files"),
        (tmp_path / "missing", "no such file"),
        (text, "not a DICOM file"),
        (source.sr, "holds no image"),
    ]
    for bad, words in cases:
        with pytest.raises(InputError) as info:
            write_classification_sr(bad, FINDING, out)
        assert words in str(info.value) and "\n" not in str(info.value)
        assert not out.exists()
    with pytest.raises(InputError, match="series description"):
        write_classification_sr(source.folder, FINDING, out, series_description="")
    assert not out.exists()


def test_source_without_any_date_needs_a_content_datetime(source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "undated"
    folder.mkdir()
    for path in source.folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword in ("StudyDate", "SeriesDate", "ContentDate", "StudyTime", "SeriesTime"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(folder / path.name)
    with pytest.raises(InputError, match="content_datetime"):
        write_classification_sr(folder, FINDING, tmp_path / "sr.dcm")
    when = datetime.datetime(2027, 1, 2, 3, 4, 5)
    out = write_classification_sr(folder, FINDING, tmp_path / "sr.dcm", content_datetime=when)
    assert pydicom.dcmread(out).StudyDate == ""


def test_read_refuses_what_is_not_a_medsight_report(source: Source) -> None:
    with pytest.raises(InputError, match="not a DICOM Structured Report"):
        read_classification_sr(next(source.folder.glob("*.dcm")))


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_finds_no_errors(source: Source) -> None:
    run = subprocess.run(["dciodvfy", str(source.sr)], capture_output=True, text=True, check=False)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dsrdump") is None, reason="dsrdump (dcmtk) not installed")
def test_dcmtk_reads_the_report_without_complaint(source: Source) -> None:
    run = subprocess.run(["dsrdump", str(source.sr)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("Comprehensive SR Document")
    assert '<contains CODE:(,,"Finding")=(nodule,99MEDSIGHT,"nodule")>' in run.stdout
    assert '"Disclaimer")="For research / assistive us' in run.stdout
