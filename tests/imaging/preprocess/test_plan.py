import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.fingerprint import fingerprint_dataset
from medsight.imaging.preprocess.plan import (
    CANONICAL_ORIENTATION,
    CLASSIFY_PIXEL_BUDGET_2D,
    CLASSIFY_VOXEL_BUDGET,
    SEGMENT_PATCH_BUDGET,
    make_classify_plan,
    make_segment_plan,
    read_plan,
    write_plan,
)
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort
from medsight.imaging.tasks.classify_setup import config_from_plan


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
    plan = make_classify_plan(fingerprint)
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
    plan = make_segment_plan(fingerprint)
    assert plan.patch_size is not None
    # the network halves the size depth - 1 times
    assert all(p % 2 ** (plan.network_depth - 1) == 0 for p in plan.patch_size)
    assert 2 <= plan.network_depth <= 5 and math.prod(plan.patch_size) <= SEGMENT_PATCH_BUDGET
    assert plan.model_name == "unet" and plan.model_kwargs["depth"] == plan.network_depth
    assert plan.preprocess.normalisation == "zscore" and plan.preprocess.shape is None


def test_plan_round_trips_and_edits_are_validated(fingerprint, tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", make_classify_plan(fingerprint))
    assert read_plan(path) == make_classify_plan(fingerprint)
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
    plan = make_segment_plan(fingerprint_dataset(volumes, ["x"] * 4, ["a", "b", "c", "d"]))
    assert plan.patch_size is not None and plan.patch_size[0] == 1
    assert plan.patch_size[1] >= 128 and plan.patch_size[2] >= 128
    assert plan.model_name == "dynunet" and plan.model_kwargs["z_levels"] == 0
    assert plan.model_kwargs["depth"] >= 4
    assert any("2D" in note for note in plan.notes)


def _mr_volumes(n: int = 6) -> list[Volume]:
    """NIfTI-like heads (no modality, RAS storage), each at its own intensity scale."""
    rng = np.random.default_rng(4)
    z, y, x = np.mgrid[0:20, 0:40, 0:32]
    head = ((z - 10) / 9) ** 2 + ((y - 20) / 17) ** 2 + ((x - 16) / 13) ** 2 <= 1
    volumes = []
    for _ in range(n):
        array = np.where(head, 600.0, 0.0) + rng.normal(0.0, 20.0, head.shape)
        scale = float(np.exp(rng.uniform(-1.5, 1.5)))
        volumes.append(
            Volume(
                np.abs(array * scale).astype(np.float32),
                (5.0, 4.0, 4.0),
                direction=np.diag([-1.0, -1.0, 1.0]),  # RAS storage, as NIfTI usually is
                meta={"kind": "nifti"},
            )
        )
    return volumes


def _xray_volumes(n: int = 6) -> list[Volume]:
    rng = np.random.default_rng(5)
    return [
        Volume(
            rng.uniform(0, 40000, (1, 300, 250)).astype(np.float32),
            (1.0, 1.0, 1.0),
            meta={"kind": "png", "bits": 16},
        )
        for _ in range(n)
    ]


def _fingerprint(volumes: list[Volume], **kwargs):
    n = len(volumes)
    labels, patients = ["a", "b"] * (n // 2), [f"p{i}" for i in range(n)]
    return fingerprint_dataset(volumes, labels, patients, **kwargs)


def test_mr_plan_normalises_each_scan_and_has_no_lung_step() -> None:
    fp = _fingerprint(_mr_volumes(), orientation=CANONICAL_ORIENTATION)
    assert fp.modality == "MR" and "inferred" in fp.modality_source
    assert fp.foreground_extent_mm is not None and fp.noise_ratio is not None
    plan = make_classify_plan(fp)
    contract = plan.preprocess
    assert contract.normalisation == "image_zscore" and contract.orientation == "LPS"
    assert contract.crop_to == "foreground" and not contract.mask_outside_lungs
    assert plan.spatial_dims == 3 and plan.augment.name == "mr"
    # the crop holds the head (+5%), not the whole field of view
    assert contract.shape is not None
    for axis in range(3):
        held = contract.shape[axis] * contract.spacing_mm[axis]
        assert held >= fp.foreground_extent_mm.max[axis]
    # a shallow detector: the deepest map keeps about 4 voxels a side
    assert min(contract.shape) / 2**plan.network_depth >= 2
    assert any("MR" in note and "inferred" in note for note in plan.notes)
    # a stated modality is used as stated
    declared = _fingerprint(_mr_volumes(), declared_modalities=["MR"] * 6)
    assert declared.modality_source == "manifest column"


def test_noisy_mr_is_planned_with_non_local_means() -> None:
    volumes = _mr_volumes()
    for volume in volumes:
        noise = np.random.default_rng(0).normal(0, 1, volume.array.shape).astype(np.float32)
        volume.array += 0.3 * float(volume.array.max()) * noise
    plan = make_classify_plan(_fingerprint(volumes))
    assert plan.preprocess.denoise == "nl_means"
    assert plan.preprocess.denoise_params["h_factor"] > 0
    quiet = make_classify_plan(_fingerprint(_mr_volumes()))
    assert quiet.preprocess.denoise == "none"


def test_one_slice_images_are_planned_2d() -> None:
    fp = _fingerprint(_xray_volumes())
    assert fp.modality == "DX"
    plan = make_classify_plan(fp)
    contract = plan.preprocess
    assert plan.spatial_dims == 2 and plan.model_name == "lungct-cnn"
    assert contract.shape is not None and len(contract.shape) == 2
    assert math.prod(contract.shape) <= CLASSIFY_PIXEL_BUDGET_2D
    assert contract.normalisation == "image_percentile" and contract.orientation is None
    assert contract.crop_to == "center" and not contract.mask_outside_lungs
    assert plan.augment.name == "xray"
    # the plan's choices reach the training settings
    config = config_from_plan(SimpleNamespace(plan=plan))  # type: ignore[arg-type]
    assert config.spatial_dims == 2 and config.model_kwargs == {"depth": plan.network_depth}
    assert config.augmentation == plan.augment
    assert config_from_plan(SimpleNamespace(plan=plan), batch_size=3).batch_size == 3  # type: ignore[arg-type]


def test_chest_ct_plan_keeps_its_scheme(fingerprint) -> None:
    plan = make_classify_plan(fingerprint)
    assert plan.augment.name == "flip+shift" and plan.spatial_dims == 3
    assert plan.preprocess.denoise == "none" and plan.network_depth == 5
    assert plan.preprocess.orientation is None  # measured as read, so kept as read


def test_ct_network_from_a_saved_plan_has_a_strided_stem_and_no_head_dropout(
    fingerprint, tmp_path: Path
) -> None:
    import torch

    from medsight.imaging.tasks.classify_fit import build_model

    plan = read_plan(write_plan(tmp_path / "plan.json", make_classify_plan(fingerprint)))
    config = config_from_plan(SimpleNamespace(plan=plan))  # type: ignore[arg-type]
    model = build_model(config, 3)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.0]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs[0].stride == (2, 2, 2)
    # integers stay integers through the JSON round trip (the factory needs an int stride)
    assert type(config.model_kwargs["stem_stride"]) is int
    # a user's edit back to the original recipe's dropout is honoured
    edited = json.loads((tmp_path / "plan.json").read_text())
    edited["model_kwargs"]["dropout"] = 0.3
    (tmp_path / "plan.json").write_text(json.dumps(edited))
    config = config_from_plan(SimpleNamespace(plan=read_plan(tmp_path / "plan.json")))  # type: ignore[arg-type]
    drops = [m.p for m in build_model(config, 3).modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.3]


def test_a_plan_written_before_modality_planning_reads_with_old_behaviour(
    fingerprint, tmp_path: Path
) -> None:
    stored = json.loads(make_classify_plan(fingerprint).model_dump_json())
    for key in ("spatial_dims", "augment"):
        del stored[key]
    for key in ("orientation", "denoise", "denoise_params", "percentiles"):
        del stored["preprocess"][key]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(stored))
    plan = read_plan(path)
    assert plan.spatial_dims == 3 and plan.augment.name == "flip+shift"
    assert plan.preprocess.orientation is None and plan.preprocess.denoise == "none"
