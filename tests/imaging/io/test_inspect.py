"""`medsight inspect`: the record a user reads before trusting an input, and its errors.

The sweep over every file in pydicom's shipped ``test_files`` folder that is DICOM with
PixelData is the acceptance test: each is described, or refused with an `InputError` (a
one-line message), never a traceback. Files refused on purpose, and why, are listed in
`EXPECTED_REFUSALS`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import typer
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medsight.cli.inspect import format_report, inspect
from medsight.errors import InputError
from medsight.imaging.io.input_report import describe_input

PYDICOM_FILES = Path(get_testdata_file("CT_small.dcm")).parent
#: pydicom test files with PixelData that medsight refuses, and why (the message says so).
EXPECTED_REFUSALS = {
    "JPEG-lossy.dcm": r"cannot decode PixelData",  # pylibjpeg rejects this 12-bit stream
    "JPEG2000-embedded-sequence-delimiter.dcm": r"JPEG 2000 frame 1 declares",  # broken items
    "MR_truncated.dcm": r"truncated",  # pixel data cut short on purpose
    "badVR.dcm": r"NumberOfFrames is not an integer",  # NumberOfFrames "1A" on purpose
    "meta_missing_tsyntax.dcm": r"missing Rows",  # a pixel-data fragment without image tags
    "nested_priv_SQ.dcm": r"missing Rows",  # ditto
}


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(inspect)
    return app


def _dicom_with_pixels() -> list[Path]:
    found = []
    for path in sorted(PYDICOM_FILES.iterdir()):
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=False)
            has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData"))
        except Exception:  # not DICOM at all (README, .json, .icc, .gz)
            continue
        if has_pixels:
            found.append(path)
    return found


def test_every_pydicom_test_file_with_pixels_is_described_or_refused_clearly(capsys) -> None:
    files = _dicom_with_pixels()
    assert len(files) >= 60
    read, refused = [], {}
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = describe_input(path)
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path))
            refused[path.name] = message
            continue
        if report["kind"] == "dicom-seg":  # pydicom ships SEGs (liver_*.dcm): not images
            assert report["segments"] and report["referenced_series"], path.name
        else:
            assert report["shape_zyx"][0] >= 1 and len(report["spacing_mm_zyx"]) == 3
        json.dumps(report)  # JSON-ready
        read.append(path.name)
    assert set(refused) == set(EXPECTED_REFUSALS), refused
    for name, pattern in EXPECTED_REFUSALS.items():
        assert re.search(pattern, refused[name]), (name, refused[name])
    with capsys.disabled():
        print(
            f"\npydicom test_files with pixel data: {len(files)}; read OK: {len(read)}; "
            f"clear InputError: {len(refused)}"
        )
        for name, message in sorted(refused.items()):
            print(f"  {name}: {message.split(': ', 1)[1]}")


def test_cli_text_for_a_ct_file() -> None:
    result = CliRunner().invoke(_app(), [get_testdata_file("CT_small.dcm")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "kind: dicom-file" in out and "modality: CT" in out
    assert "shape_zyx: 1 x 128 x 128" in out
    assert "orientation: LPS" in out
    assert "transfer_syntax: Explicit VR Little Endian" in out
    assert "warnings: none" in out


def test_cli_json_for_a_series_with_a_missing_slice(tiny_series: Path) -> None:
    sorted(tiny_series.glob("*.dcm"))[2].unlink()
    result = CliRunner().invoke(_app(), [str(tiny_series), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kind"] == "dicom-series" and report["n_slices"] == 5
    assert report["spacing_mm_zyx"] == [2.5, 0.7, 0.8]
    assert report["orientation"] == "LPS" and report["modality"] == "CT"
    assert report["n_series"] == 1 and len(report["series"]) == 1
    assert any(w.startswith("missing slices") for w in report["warnings"])
    assert report["intensity"]["min"] >= -1000 and report["intensity"]["max"] < 1500


def test_cli_refuses_with_input_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = CliRunner().invoke(_app(), [str(path)])
    assert isinstance(result.exception, InputError)
    assert "not a recognised input" in str(result.exception)


def test_inspect_lists_several_series_and_describes_the_largest(
    tiny_series: Path, tmp_path: Path
) -> None:
    for path in list(tiny_series.glob("*.dcm"))[:2]:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.999"
        ds.save_as(path)
    report = describe_input(tiny_series)
    assert [s["n_frames"] for s in report["series"]] == [4, 2]
    assert report["n_slices"] == 4 and report["n_series"] == 2
    picked = describe_input(tiny_series, series="1.2.826.0.1.3680043.8.498.999")
    assert picked["n_slices"] == 2
    assert "series" in "\n".join(format_report(report))


def test_inspect_nifti_png_and_collections(tmp_path: Path) -> None:
    import nibabel as nib
    from PIL import Image

    nifti = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 2, 2, 1])), nifti)
    report = describe_input(nifti)
    assert report["kind"] == "nifti" and report["orientation"] == "RAS"
    assert report["shape_zyx"] == [6, 5, 4] and report["nifti_version"] == 1
    png = tmp_path / "x.png"
    Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).save(png)
    report = describe_input(png)
    assert report["kind"] == "png" and report["intensity"]["max"] == 55000.0
    npz = tmp_path / "m.npz"
    np.savez_compressed(
        npz, train_images=np.zeros((5, 28, 28), np.uint8), train_labels=np.arange(5)[:, None] % 2
    )
    report = describe_input(npz)
    assert report["splits"]["train"]["n"] == 5
    assert report["splits"]["train"]["label_counts"] == {"0": 3, "1": 2}


def _brain_dataset(root: Path) -> tuple[Path, np.ndarray]:
    """A Decathlon brain-tumour layout: one 4D image (x, y, z, 4 channels) in imagesTr/."""
    import nibabel as nib

    (root / "imagesTr").mkdir(parents=True)
    data = np.stack([np.full((6, 5, 4), 10.0 * (c + 1), np.float32) for c in range(4)], axis=-1)
    image = root / "imagesTr" / "BRATS_001.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), image)
    modality = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    (root / "dataset.json").write_text(json.dumps({"modality": modality, "training": []}))
    return image, data


def test_4d_nifti_is_described_one_volume_at_a_time_with_its_channel_names(
    tmp_path: Path,
) -> None:
    image, data = _brain_dataset(tmp_path)
    first = describe_input(image)
    assert first["shape_zyx"] == [4, 5, 6] and first["spacing_mm_zyx"] == [2.0, 1.0, 1.0]
    assert (first["n_volumes"], first["volume"], first["channel"]) == (4, 0, "FLAIR")
    assert first["channel_names"] == {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    assert first["intensity"]["max"] == 10.0
    assert any("volume 0 is described" in w for w in first["warnings"])
    third = describe_input(image, volume=2)
    assert (third["volume"], third["channel"], third["intensity"]["mean"]) == (2, "t1gd", 30.0)
    assert third["warnings"] == []  # picked on purpose: nothing assumed
    with pytest.raises(InputError, match="volume 4 is outside 0..3"):
        describe_input(image, volume=4)


def test_4d_nifti_whose_dataset_names_other_channels_says_so(tmp_path: Path) -> None:
    image, _ = _brain_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}}))
    report = describe_input(image, volume=1)
    assert "channel_names" not in report
    assert any("names 1 channel(s), the image holds 4 volumes" in w for w in report["warnings"])


def test_volume_of_a_dicom_series_is_refused_in_one_line(tiny_series: Path) -> None:
    with pytest.raises(InputError, match="not a 4D NIfTI") as err:
        describe_input(tiny_series, volume=0)
    assert "\n" not in str(err.value)


def test_dicom_seg_is_described_not_read_as_an_image(tiny_series: Path, tmp_path: Path) -> None:
    from medsight.imaging.io.dicom_seg import describe_segment, write_dicom_seg
    from medsight.imaging.io.read_image import read_image

    label_map = np.zeros((6, 24, 32), np.uint8)
    label_map[1:4, 2:9, 3:20] = 1
    label_map[2, 12:15, 20:24] = 2
    seg = write_dicom_seg(
        label_map,
        tiny_series,
        [describe_segment(1, "lung"), describe_segment(2, "nodule")],
        tmp_path / "seg.dcm",
        algorithm_name="lungct-unet",
        algorithm_version="1",
    )
    report = describe_input(seg)
    ct = pydicom.dcmread(next(tiny_series.glob("*.dcm")), stop_before_pixels=True)
    assert report["kind"] == "dicom-seg" and report["segmentation_type"] == "BINARY"
    assert [(s["number"], s["label"], s["type"], s["n_frames"]) for s in report["segments"]] == [
        (1, "lung", "Lung", 3),
        (2, "nodule", "Nodule", 1),
    ]
    assert report["segments"][1]["category"] == "Morphologically Abnormal Structure"
    assert report["referenced_series"] == [{"series_uid": ct.SeriesInstanceUID, "n_instances": 6}]
    assert report["study_uid"] == ct.StudyInstanceUID
    assert report["frame_of_reference_uid"] == ct.FrameOfReferenceUID
    assert report["n_frames"] == 4 and report["frame_size"] == [24, 32]
    assert report["pixel_spacing_mm"] == pytest.approx([0.7, 0.8])
    assert report["orientation"] == "LPS" and report["n_planes"] == 3
    assert report["extent_mm"] == pytest.approx([-30.0 + 2.5, -30.0 + 3 * 2.5])
    assert str(ct.PatientName) not in json.dumps(report)
    text = "\n".join(format_report(report))
    assert "segment: 2 'nodule' (Morphologically Abnormal Structure / Nodule" in text
    assert f"referenced series: {ct.SeriesInstanceUID}: 6 instance(s)" in text
    with pytest.raises(InputError, match="DICOM SEG is a label map drawn on another series"):
        read_image(seg)


def test_dicom_sr_findings_measurements_and_study_are_described(
    tiny_series: Path, tmp_path: Path
) -> None:
    from medsight.imaging.io.dicom_sr import ClassificationFinding, write_classification_sr
    from medsight.imaging.io.read_image import read_image

    finding = ClassificationFinding(
        predicted="nodule",
        probabilities={"normal": 0.25, "nodule": 0.75},
        model_name="lungct-cnn",
        model_version="7",
        model_sha256="0123456789abcdef" * 4,
        conformal_set=("nodule",),
        refer=True,
    )
    sr = write_classification_sr(tiny_series, finding, tmp_path / "report.dcm")
    report = describe_input(sr)
    ct = pydicom.dcmread(next(tiny_series.glob("*.dcm")), stop_before_pixels=True)
    assert report["kind"] == "dicom-sr" and report["template"] == "TID 1500"
    assert report["title"] == "Imaging Measurement Report"
    assert report["sop_class"] == "Comprehensive SR Storage"
    assert report["study_uid"] == ct.StudyInstanceUID
    assert report["evidence"] == [
        {"study_uid": ct.StudyInstanceUID, "series_uid": ct.SeriesInstanceUID, "n_instances": 6}
    ]
    assert {"name": "Finding", "value": "nodule"} in report["findings"]
    assert {"name": "Refer to clinician", "value": "Yes"} in report["findings"]
    assert [(m["name"], m["value"], m["qualifiers"]) for m in report["measurements"]] == [
        ("Probability", 0.25, ["Classifier output class: normal"]),
        ("Probability", 0.75, ["Classifier output class: nodule"]),
    ]
    assert report["algorithms"] == {"name": "lungct-cnn", "version": "7"}
    assert report["n_images"] == 6  # the image library, not listed as measurements
    assert report["verification"] == "UNVERIFIED"
    assert str(ct.PatientName) not in json.dumps(report)
    text = "\n".join(format_report(report))
    assert "measurement: Probability = 0.75 (Classifier output class: nodule)" in text
    with pytest.raises(InputError, match="DICOM SR holds findings .* `medsight inspect`"):
        read_image(sr)


def test_third_party_sr_measurement_keeps_its_unit() -> None:
    report = describe_input(get_testdata_file("test-SR.dcm"))
    assert report["kind"] == "dicom-sr" and report["verification"] == "VERIFIED"
    assert {"name": "Diameter", "value": 3.0, "unit": "cm", "qualifiers": []} in report[
        "measurements"
    ]
