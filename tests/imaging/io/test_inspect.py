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
