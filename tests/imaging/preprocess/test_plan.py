import json
import math
from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.fingerprint import fingerprint_dataset
from medsight.imaging.preprocess.plan import (
    CLASSIFY_VOXEL_BUDGET,
    SEGMENT_PATCH_BUDGET,
    make_plan,
    read_plan,
    write_plan,
)
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort


@pytest.fixture(scope="module")
def fingerprint():
    specs = plan_cohort(8, seed=2)
    volumes = [case_volume(s)[0] for s in specs]
    return fingerprint_dataset(
        volumes, [s.label for s in specs], [s.identity.patient_id for s in specs]
    )


def test_fingerprint_measures_the_data(fingerprint) -> None:
    assert fingerprint.n_cases == fingerprint.n_measured == 8
    assert fingerprint.modality == "CT"
    assert fingerprint.spacing_mm.median[0] == 5.0
    assert 2.7 < fingerprint.spacing_mm.median[1] < 3.2
    assert fingerprint.shape_vox.median == (48.0, 128.0, 128.0)
    assert fingerprint.lung_extent_mm is not None
    # lungs are narrower than the field of view and wider than they are deep
    fov_x = fingerprint.extent_mm.median[2]
    assert 0.5 * fov_x < fingerprint.lung_extent_mm.median[2] < fov_x
    assert fingerprint.lung_extent_mm.median[2] > fingerprint.lung_extent_mm.median[1]
    assert fingerprint.foreground_percentiles_hu["p0.5"] < -700  # lungs are inside the body
    assert sum(fingerprint.class_counts.values()) == 8


def test_classify_plan_fits_the_lungs_and_the_budget(fingerprint) -> None:
    plan = make_plan(fingerprint, "classify")
    contract = plan.preprocess
    assert contract.shape is not None and np.prod(contract.shape) <= CLASSIFY_VOXEL_BUDGET * 1.2
    lungs = fingerprint.lung_extent_mm
    for axis in range(3):
        assert contract.shape[axis] * contract.spacing_mm[axis] >= lungs.max[axis]
        assert contract.shape[axis] % 8 == 0
    assert contract.crop_to == "lungs" and contract.normalisation == "window"
    assert plan.model_name == "lungct-cnn" and 1 <= plan.network_depth <= 5
    assert plan.batch_size >= 1 and plan.notes


def test_segment_plan_has_patch_and_zscore(fingerprint) -> None:
    plan = make_plan(fingerprint, "segment")
    assert plan.patch_size is not None
    # the network halves the size depth - 1 times
    assert all(p % 2 ** (plan.network_depth - 1) == 0 for p in plan.patch_size)
    assert 2 <= plan.network_depth <= 5 and math.prod(plan.patch_size) <= SEGMENT_PATCH_BUDGET
    assert plan.model_name == "unet" and plan.model_kwargs["depth"] == plan.network_depth
    assert plan.preprocess.normalisation == "zscore" and plan.preprocess.shape is None


def test_plan_round_trips_and_edits_are_validated(fingerprint, tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", make_plan(fingerprint, "classify"))
    assert read_plan(path) == make_plan(fingerprint, "classify")
    edited = json.loads(path.read_text())
    edited["preprocess"]["spacing_mm"] = [5.0, -1.0, 3.0]
    path.write_text(json.dumps(edited))
    with pytest.raises(InputError, match="preprocess.spacing_mm"):
        read_plan(path)
    with pytest.raises(InputError, match="run `medsight plan"):
        read_plan(tmp_path / "missing.json")


def test_segment_plan_for_one_slice_images_is_2d() -> None:
    rng = np.random.default_rng(0)
    volumes = [
        Volume(rng.normal(0, 50, (1, 256, 224)).astype(np.float32), (1.0, 0.5, 0.5), modality="CR")
        for _ in range(4)
    ]
    plan = make_plan(fingerprint_dataset(volumes, ["x"] * 4, ["a", "b", "c", "d"]), "segment")
    assert plan.patch_size is not None and plan.patch_size[0] == 1
    assert plan.patch_size[1] >= 128 and plan.patch_size[2] >= 128
    assert plan.model_name == "dynunet" and plan.model_kwargs["z_levels"] == 0
    assert plan.model_kwargs["depth"] >= 4
    assert any("2D" in note for note in plan.notes)
