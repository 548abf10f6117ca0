"""Learnability as a new user meets it: small MR and X-ray sets train out of the box.

Two seeded sets whose classes a one-line image feature separates (`medsight.imaging.synth`):
16-bit PNG "chest X-rays" with or without a bright blob in a lung field, and NIfTI "brain MR"
volumes with or without a bright focus, each scan at its own intensity scale. The slow test
drives the CLI exactly as a user would (``medsight train DATA -o RUN``, ``medsight evaluate
RUN``, ``medsight predict RUN FILE --json``) and asks for a test macro AUC of at least 0.85,
with no lung-specific step in the plan. Before per-modality planning, both sets scored about
0.56 (chance): the PNGs were planned as 8-slice volumes for a 3D CNN, and the MR scans were
z-scored with one dataset-wide mean and standard deviation although their scale differs
25-fold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from medsight.imaging.synth.mr_like import MR_CLASSES, make_mr_case, write_mr_dataset
from medsight.imaging.synth.xray_like import XRAY_CLASSES, make_xray_case, write_xray_dataset

#: the generators' default sizes: big enough to learn from scratch, small enough for about a
#: minute of training on two CPU cores
N_XRAY, N_MR = 320, 200
EPOCHS = 30


def _percentile_scaled(array: np.ndarray) -> np.ndarray:
    low, high = np.percentile(array, [0.5, 99.5])
    return (np.clip(array, low, high) - low) / (high - low)


def test_xray_set_is_separable_by_a_blob_detector_but_not_by_brightness() -> None:
    labels, blob, brightness = [], [], []
    for i in range(80):
        case = make_xray_case(i, XRAY_CLASSES[i % 2], 64, seed=0)
        image = _percentile_scaled(case.pixels.astype(np.float64))
        dog = ndimage.gaussian_filter(image, 1.5) - ndimage.gaussian_filter(image, 3.0)
        inside = ndimage.binary_erosion(case.lungs, iterations=2)
        labels.append(case.label == "nodule")
        blob.append(dog[inside].max())
        brightness.append(case.pixels.mean())
    assert roc_auc_score(labels, blob) > 0.97
    assert 0.3 < roc_auc_score(labels, brightness) < 0.7


def test_mr_set_needs_per_scan_scaling() -> None:
    labels, raw_max, scaled_max = [], [], []
    for i in range(80):
        case = make_mr_case(i, MR_CLASSES[i % 2], seed=0)
        values = case.array.astype(np.float64)
        head = values > 0.1 * np.percentile(values, 99.5)
        labels.append(case.label == "focus")
        raw_max.append(values.max())
        scaled_max.append(values.max() / values[head].mean())
    # the one-line feature works only once each scan is put on its own scale
    assert 0.3 < roc_auc_score(labels, raw_max) < 0.7
    assert 0.8 < roc_auc_score(labels, scaled_max) < 0.99


@pytest.mark.parametrize(
    ("write", "size"), [(write_xray_dataset, N_XRAY), (write_mr_dataset, N_MR)], ids=["xray", "mr"]
)
def test_the_generators_are_deterministic(write, size, tmp_path: Path) -> None:
    first = write(tmp_path / "a", n_cases=4, seed=3)
    again = write(tmp_path / "b", n_cases=4, seed=3)
    assert first.read_text() == again.read_text()
    assert first.read_text().splitlines()[0] == "path,label,patient_id"
    for row in first.read_text().splitlines()[1:]:
        name = row.split(",")[0]
        assert (first.parent / name).read_bytes() == (again.parent / name).read_bytes()


def _medsight(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["xray", "mr"])
def test_a_small_set_is_learnable_out_of_the_box(kind: str, tmp_path: Path) -> None:
    if kind == "xray":
        manifest = write_xray_dataset(tmp_path / "data", N_XRAY, seed=0)
    else:
        manifest = write_mr_dataset(tmp_path / "data", N_MR, seed=0)
    run = tmp_path / "run"
    _medsight("train", str(manifest), "-o", str(run), "--epochs", str(EPOCHS))
    _medsight("evaluate", str(run))

    plan = json.loads((run / "plan.json").read_text())
    contract = plan["preprocess"]
    # no lung-specific step, and the modality's own scheme
    assert contract["crop_to"] != "lungs" and not contract["mask_outside_lungs"]
    if kind == "xray":
        assert plan["spatial_dims"] == 2 and len(contract["shape"]) == 2
        assert contract["normalisation"] == "image_percentile"
    else:
        assert plan["spatial_dims"] == 3 and contract["normalisation"] == "image_zscore"
        assert contract["orientation"] == "LPS"
    assert json.loads((run / "model.json").read_text())["spatial_dims"] == plan["spatial_dims"]

    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert metrics["macro_auc"] >= 0.85, metrics["macro_auc"]

    if kind == "xray":  # an external test manifest (no train split of its own)
        # bare-path manifests number their rows in both files (row_00000, ...)
        external = write_xray_dataset(tmp_path / "external", 24, seed=7)
        _medsight("evaluate", str(run), "--data", str(external), "-o", str(tmp_path / "ext"))
        on_external = json.loads((tmp_path / "ext" / "metrics.json").read_text())
        assert on_external["n_cases"] == 24
        assert all(c.startswith("external_row_") for c in on_external["conformal"]["sets"])

    image = manifest.parent / manifest.read_text().splitlines()[2].split(",")[0]
    lines = [line for line in _medsight("predict", str(run), str(image), "--json").splitlines()]
    record = json.loads([line for line in lines if line.strip()][-1])
    assert set(record["probabilities"]) == set(XRAY_CLASSES if kind == "xray" else MR_CLASSES)
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
