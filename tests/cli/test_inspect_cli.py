"""`medsight inspect` on what is not one 3D image: a 4D NIfTI, a DICOM SEG, a DICOM SR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medsight.cli.main import app
from medsight.errors import InputError
from medsight.imaging.io.ct_writer import write_ct_series
from medsight.imaging.io.dicom_seg import describe_segment, write_dicom_seg
from medsight.imaging.io.dicom_sr import ClassificationFinding, write_classification_sr
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_ct import plan_cohort


def medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=300
    )


def inspect(*args: str) -> str:
    result = CliRunner().invoke(app, ["inspect", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def brain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Decathlon Task01-style 4D image: 4 channels on the last axis, named in dataset.json."""
    root = tmp_path_factory.mktemp("brain")
    (root / "imagesTr").mkdir()
    data = np.stack([np.full((6, 5, 4), 100.0 * c, np.float32) for c in range(4)], axis=-1)
    image = root / "imagesTr" / "BRATS_001.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.5, 1.0])), image)
    modality = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    (root / "dataset.json").write_text(json.dumps({"modality": modality, "training": []}))
    return image


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A SEG and an SR of a small CT series, as medsight writes them."""
    root = tmp_path_factory.mktemp("derived")
    rng = np.random.default_rng(1)
    array = rng.integers(-1000, 1000, size=(5, 16, 20)).astype(np.float32)
    volume = Volume(array, (2.0, 0.8, 0.8), np.array([0.0, 0.0, 0.0]), np.eye(3), "CT")
    write_ct_series(volume, plan_cohort(1, seed=5)[0].identity, root / "series")
    label_map = np.zeros(volume.shape, np.uint8)
    label_map[1:3, 4:8, 4:8] = 1
    seg = write_dicom_seg(
        label_map,
        root / "series",
        [describe_segment(1, "tumour")],
        root / "seg.dcm",
        algorithm_name="annotator",
        algorithm_version="1",
    )
    finding = ClassificationFinding(
        predicted="mass",
        probabilities={"normal": 0.1, "mass": 0.9},
        model_name="lungct-cnn",
        model_version="3",
        model_sha256="ab" * 32,
        conformal_set=None,
        refer=False,
    )
    sr = write_classification_sr(root / "series", finding, root / "sr.dcm")
    return seg, sr


def test_4d_nifti_shows_volumes_and_the_picked_channel(brain: Path) -> None:
    out = inspect(str(brain))
    assert "n_volumes: 4" in out and "channel: FLAIR" in out
    assert "channel_names: 0=FLAIR, 1=T1w, 2=t1gd, 3=T2w" in out
    assert "shape_zyx: 4 x 5 x 6" in out and "spacing_mm_zyx: 1.5 x 1 x 1" in out
    assert "volume 0 is described (pick another with --volume N)" in out
    picked = inspect(str(brain), "--channel", "2")
    assert "channel: t1gd" in picked and "200 .. 200" in picked and "warnings: none" in picked
    assert inspect(str(brain), "--volume", "2") == picked


def test_dicom_seg_and_sr_are_described(derived: tuple[Path, Path]) -> None:
    seg, sr = derived
    out = inspect(str(seg))
    assert "kind: dicom-seg" in out
    assert "segment: 1 'tumour' (Morphologically Abnormal Structure / Tumor" in out
    assert "referenced series: " in out and "5 instance(s)" in out
    assert "frame_size: 16 x 20" in out and "n_frames: 2" in out
    out = inspect(str(sr), "--json")
    report = json.loads(out)
    assert report["template"] == "TID 1500" and report["evidence"][0]["n_instances"] == 5
    assert {"name": "Finding", "value": "mass"} in report["findings"]


@pytest.mark.slow  # a `python -m medsight` process
def test_a_volume_that_is_not_there_is_one_error_line(brain: Path) -> None:
    result = medsight("inspect", str(brain), "--volume", "7")
    assert result.returncode == 2 and "volume 7 is outside 0..3" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_volume_of_a_seg_is_refused(derived: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(app, ["inspect", str(derived[0]), "--volume", "1"])
    assert isinstance(result.exception, InputError)
    assert "dicom-seg, not a 4D NIfTI" in str(result.exception)
