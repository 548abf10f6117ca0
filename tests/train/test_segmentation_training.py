"""Segmentation training on the toy dataset: plan, cache, fit, resume, checks up front."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from medsight.errors import InputError
from medsight.evaluate.segmentation.segmentation_metrics import global_dice, overlap_counts
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.tasks.segment_data import prepare_segmentation_data
from medsight.imaging.tasks.segment_run import config_from_plan, train_segmentation_run

pytestmark = pytest.mark.slow  # every test plans, caches or fits: seconds to tens of seconds

FAST = {"iterations_per_epoch": 8, "val_cases_per_epoch": 3, "learning_rate": 1e-2}


def _prepare(manifest: Path, run: Path):
    return prepare_segmentation_data(manifest, run, seed=0)


def test_plan_and_split_come_from_the_data(toy_segmentation: Path, tmp_path: Path) -> None:
    data = _prepare(toy_segmentation, tmp_path)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["task"] == "segment" and plan["model_name"] == "unet"
    assert data.class_names == ["background", "organ", "nodule"]
    assert {len(data.indices(s)) > 0 for s in ("train", "val", "test")} == {True}
    assert data.images[0].shape == data.labels[0].shape


def test_training_learns_the_organ_and_saves_a_usable_run(
    toy_segmentation: Path, tmp_path: Path
) -> None:
    data = _prepare(toy_segmentation, tmp_path)
    config = config_from_plan(
        data.plan, model_kwargs={"depth": 3, "base_filters": 8}, max_epochs=6, **FAST
    )
    fit = train_segmentation_run(data, config, tmp_path)
    assert len(fit.history) == 6 and fit.best_epoch >= 1
    contract = json.loads((tmp_path / "model.json").read_text())
    assert contract["task"] == "segment" and contract["label_values"] == [1, 2]
    segmenter = Segmenter(tmp_path)
    test = data.indices("test")
    dice = np.mean(
        [
            global_dice(
                [
                    overlap_counts(
                        segmenter.probabilities(data.images[int(i)]).argmax(0).numpy(),
                        data.labels[int(i)],
                        1,
                    )
                ]
            )
            for i in test
        ]
    )
    assert dice > 0.8, f"organ Dice {dice:.3f} after 48 steps"


class Interrupted(Exception):
    pass


def test_resume_ends_with_the_uninterrupted_weights(toy_segmentation: Path, tmp_path: Path) -> None:
    base = {"model_kwargs": {"depth": 3, "base_filters": 4}, **FAST, "iterations_per_epoch": 3}
    a = _prepare(toy_segmentation, tmp_path / "a")
    train_segmentation_run(a, config_from_plan(a.plan, max_epochs=2, **base), tmp_path / "a")
    b = _prepare(toy_segmentation, tmp_path / "b")
    config = config_from_plan(b.plan, max_epochs=2, **base)

    def kill_after_first(row: dict) -> None:
        if row["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_segmentation_run(b, config, tmp_path / "b", on_epoch=kill_after_first)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    fit = train_segmentation_run(b, config, tmp_path / "b", resume=True)
    assert [row["epoch"] for row in fit.history] == [1, 2]
    a_weights = load_file(str(tmp_path / "a" / "model.safetensors"))
    b_weights = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(np.array_equal(a_weights[k].numpy(), b_weights[k].numpy()) for k in a_weights)


def test_all_training_masks_empty_is_refused(toy_segmentation: Path, tmp_path: Path) -> None:
    from medsight.imaging.io.nifti import write_nifti
    from medsight.imaging.io.read_image import read_image

    lines = toy_segmentation.read_text().splitlines()
    root = toy_segmentation.parent
    rows = [lines[0]]
    for line in lines[1:]:
        image, mask, patient = line.split(",")
        reference = read_image(root / mask)
        empty = tmp_path / Path(mask).name
        write_nifti(empty, np.zeros(reference.shape, np.uint8), reference.affine_ras())
        rows.append(f"{root / image},{empty},{patient}")
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.json").write_text('{"organ": 1, "nodule": 2}')
    with pytest.raises(InputError, match="every training mask is empty"):
        prepare_segmentation_data(manifest, tmp_path / "run", seed=0)


def test_deep_supervision_trains_dynunet_and_saves_a_plain_network(
    toy_segmentation: Path, tmp_path: Path
) -> None:
    data = _prepare(toy_segmentation, tmp_path)
    config = config_from_plan(
        data.plan,
        model_name="dynunet",
        model_kwargs={"depth": 3, "base_filters": 4},
        deep_supervision=True,
        max_epochs=1,
        **{**FAST, "iterations_per_epoch": 2},
    )
    train_segmentation_run(data, config, tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert not any("deep_supervision" in key for key in weights)
    assert Segmenter(tmp_path).probabilities(data.images[0]).shape[0] == 3


def test_deep_supervision_with_another_network_is_a_clear_error(
    toy_segmentation: Path, tmp_path: Path
) -> None:
    data = _prepare(toy_segmentation, tmp_path)
    config = config_from_plan(data.plan, deep_supervision=True, max_epochs=1)
    with pytest.raises(InputError, match="--model dynunet"):
        train_segmentation_run(data, config, tmp_path)


def test_one_slice_images_train_a_2d_network(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["image,mask,patient_id"]
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(10):
        cy, cx = 32 + rng.integers(-8, 9), 32 + rng.integers(-8, 9)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 100
        image = np.clip(rng.normal(60, 10, (64, 64)) + 120 * disc, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / f"x{i}.png")
        Image.fromarray(disc.astype(np.uint8)).save(tmp_path / f"m{i}.png")
        rows.append(f"x{i}.png,m{i}.png,p{i}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.json").write_text('{"disc": 1}')
    data = prepare_segmentation_data(tmp_path / "m.csv", tmp_path / "run", seed=0)
    assert data.plan.patch_size is not None and data.plan.patch_size[0] == 1
    assert data.plan.model_name == "dynunet"
    config = config_from_plan(data.plan, max_epochs=1, **{**FAST, "iterations_per_epoch": 2})
    train_segmentation_run(data, config, tmp_path / "run")
    segmenter = Segmenter(tmp_path / "run")
    assert segmenter.probabilities(data.images[0]).shape == (2, 1, 64, 64)
