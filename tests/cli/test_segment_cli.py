"""Golden path of segmentation through the CLI: DICOM series in, masks + DICOM SEG out.

plan -> (edited plan: a small network, as a person may edit it) -> train -> predict ->
evaluate, on the toy dataset stored as CT series.
"""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medsight.imaging.io.dicom_seg_read import read_dicom_seg
from medsight.imaging.io.read_image import read_image

pytestmark = pytest.mark.slow  # `python -m medsight` processes, and a trained run


def medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=600
    )


def small_network_plan(manifest: Path, run: Path) -> None:
    """`medsight plan`, then edit the plan to a tiny network, as a person may."""
    run.mkdir(parents=True, exist_ok=True)
    made = medsight("plan", str(manifest), "--task", "segment", "-o", str(run / "plan.json"))
    assert made.returncode == 0, made.stderr
    plan = json.loads((run / "plan.json").read_text())
    plan["model_kwargs"].update({"depth": 3, "base_filters": 4})
    (run / "plan.json").write_text(json.dumps(plan))


@pytest.fixture(scope="module")
def trained(toy_segmentation_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("segrun") / "run"
    small_network_plan(toy_segmentation_dicom, run)
    result = medsight(
        "train",
        str(toy_segmentation_dicom),
        "--task",
        "segment",
        "-o",
        str(run),
        "--epochs",
        "2",
        "--iterations",
        "3",
    )
    assert result.returncode == 0, result.stderr
    return run


def test_train_uses_the_edited_plan_and_leaves_a_complete_run(trained: Path) -> None:
    contract = json.loads((trained / "model.json").read_text())
    assert contract["task"] == "segment" and contract["model_kwargs"]["base_filters"] == 4
    assert contract["class_names"] == ["background", "organ", "nodule"]
    for name in ("model.safetensors", "postprocess.json", "history.csv", "splits.csv"):
        assert (trained / name).is_file()


def test_predict_writes_nifti_in_the_input_geometry_and_a_matching_dicom_seg(
    trained: Path, toy_segmentation_dicom: Path, tmp_path: Path
) -> None:
    series = toy_segmentation_dicom.parent / "series" / "toy_001"
    result = medsight("predict", str(trained), str(series), "-o", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    image = read_image(series)
    nifti = nib.load(record["segmentation"])
    assert np.allclose(nifti.affine, image.affine_ras(), atol=1e-4)
    labels = np.asarray(nifti.dataobj).transpose(2, 1, 0)  # (x, y, z) -> (z, y, x)
    assert labels.shape == image.shape
    seg = pydicom.dcmread(record["dicom_seg"])
    assert seg.Modality == "SEG"
    assert seg.StudyInstanceUID == pydicom.dcmread(next(series.iterdir())).StudyInstanceUID
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["organ", "nodule"]
    back, names = read_dicom_seg(Path(record["dicom_seg"]), series)
    assert np.array_equal(back, labels) and names == {1: "organ", 2: "nodule"}
    structures = json.loads((Path(record["output_dir"]) / "structures.json").read_text())
    voxel_ml = float(np.prod(image.spacing_mm)) / 1000
    assert structures["structures"]["organ"]["volume_ml"] == pytest.approx(
        (labels == 1).sum() * voxel_ml, abs=1e-3
    )
    assert record["overlays"] and all(Path(p).is_file() for p in record["overlays"])


def test_evaluate_writes_metrics_with_cis_and_a_report(trained: Path) -> None:
    result = medsight("evaluate", str(trained), "--n-boot", "100")
    assert result.returncode == 0, result.stderr
    assert "organ: Dice" in result.stdout and "nodule: Dice" in result.stdout
    metrics = json.loads((trained / "eval" / "metrics.json").read_text())
    organ = metrics["summary"]["per_class"]["organ"]["metrics"]["dice"]["mean"]
    assert set(organ) >= {"point", "low", "high"}
    assert metrics["summary"]["per_class"]["nodule"]["lesions"] is not None
    html = (trained / "eval" / "report.html").read_text()
    assert "HD95" in html and "data:image/png;base64" in html


def test_segment_task_needs_masks(small_dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("path,label\nx.nii,a\n")
    result = medsight("train", str(bad), "--task", "segment", "-o", str(tmp_path / "run"))
    assert result.returncode == 2 and "mask column" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_segment_predict_needs_an_output_folder(
    trained: Path, toy_segmentation_dicom: Path
) -> None:
    series = toy_segmentation_dicom.parent / "series" / "toy_001"
    result = medsight("predict", str(trained), str(series))
    assert result.returncode == 2 and "--out" in result.stderr


def test_folds_make_an_ensemble_that_predict_averages(
    toy_segmentation: Path, tmp_path: Path
) -> None:
    run = tmp_path / "cv"
    small_network_plan(toy_segmentation, run)
    result = medsight(
        "train",
        str(toy_segmentation),
        "--task",
        "segment",
        "-o",
        str(run),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--iterations",
        "2",
    )
    assert result.returncode == 0, result.stderr
    cv = json.loads((run / "cv_metrics.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [1, 2]
    assert set(cv["pooled_out_of_fold_dice"]) == {"organ", "nodule"}
    assert json.loads((run / "ensemble.json").read_text())["members"] == ["fold_1", "fold_2"]
    assert (run / "postprocess.json").is_file()
    image = toy_segmentation.parent / "images" / "toy_001.nii.gz"
    out = tmp_path / "pred"
    answer = medsight("predict", str(run), str(image), "-o", str(out), "--mirror", "--json")
    assert answer.returncode == 0, answer.stderr
    record = json.loads(answer.stdout)
    assert "dicom_seg" not in record  # NIfTI input: no DICOM to reference
    assert nib.load(record["segmentation"]).shape == (48, 48, 16)
