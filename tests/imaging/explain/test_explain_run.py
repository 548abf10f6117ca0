"""`explain_input` and `medsight explain` end to end: DICOM series in, aligned heatmap out."""

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from medsight.cli.explain import explain
from medsight.errors import InputError
from medsight.imaging.explain.explain_run import explain_input
from medsight.imaging.explain.heatmap_geometry import model_grid
from medsight.imaging.inference.predictor import Predictor
from medsight.imaging.io.read_image import read_image
from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

CLASSES = ["normal", "benign", "malignant"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 3-block lungct-cnn saved as a run (explanations need no skill)."""
    out = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = create_model("lungct-cnn", num_classes=len(CLASSES), depth=3)
    contract = ModelContract(
        model_name="lungct-cnn",
        model_kwargs={"depth": 3},
        class_names=CLASSES,
        preprocess=PreprocessContract(shape=(16, 32, 48)),
        seed=0,
    )
    save_checkpoint(out, model, contract)
    return out


@pytest.fixture(scope="module")
def ensemble_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two untrained lungct-cnn folds listed in ensemble.json."""
    out = tmp_path_factory.mktemp("ensemble")
    contract = ModelContract(
        model_name="lungct-cnn",
        model_kwargs={"depth": 3},
        class_names=CLASSES,
        preprocess=PreprocessContract(shape=(16, 32, 48)),
        seed=0,
    )
    for seed in (1, 2):
        torch.manual_seed(seed)
        save_checkpoint(out / f"fold_{seed}", create_model("lungct-cnn", depth=3), contract)
    (out / "ensemble.json").write_text(json.dumps({"members": ["fold_1", "fold_2"]}))
    return out


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    write_chest_ct_dataset(root, 1, seed=0, workers=1)
    return root / "series" / "case_0001"


@pytest.mark.slow  # occlusion: one forward pass per patch
@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "occlusion"])
def test_explain_input_writes_aligned_files(
    run_dir: Path, series: Path, tmp_path: Path, method: str
) -> None:
    out = tmp_path / "explained"
    record = explain_input(run_dir, series, out, method=method)

    volume = read_image(series)
    image: Any = nib.load(str(out / "heatmap.nii.gz"))
    np.testing.assert_allclose(image.affine, volume.affine_ras(), atol=1e-5)
    heat = np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)
    assert heat.shape == volume.shape
    assert heat.min() >= 0.0 and heat.max() <= 1.0

    # nothing outside the region the model saw: its box, mapped onto the input's voxels
    grid = model_grid(volume, Predictor(run_dir).contract.preprocess)
    first = grid.input_index(np.full(3, -0.5))
    last = grid.input_index(np.asarray(grid.crop_shape) - 0.5)
    seen = tuple(
        slice(max(0, int(np.floor(a)) - 1), int(np.ceil(b)) + 2)
        for a, b in zip(first, last, strict=True)
    )
    unseen = np.ones(volume.shape, dtype=bool)
    unseen[seen] = False
    assert heat[unseen].max(initial=0.0) == 0.0

    saved = json.loads((out / "explanation.json").read_text(encoding="utf-8"))
    assert saved == record
    assert record["method"] == method and record["model_name"] == "lungct-cnn"
    assert record["probabilities"] == pytest.approx(Predictor(run_dir).predict(series))
    assert record["predicted"] == max(record["probabilities"], key=record["probabilities"].get)
    assert record["class_name"] == record["predicted"]
    assert 1 <= len(record["slices"]) <= 3
    for entry in record["slices"]:
        png = out / entry["file"]
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert 0 <= entry["z"] < 16 and 0 <= entry["input_z"] < volume.shape[0]
    assert record["files"][0] == "heatmap.nii.gz" and record["files"][-1] == "explanation.json"
    assert sorted(p.name for p in out.iterdir()) == sorted(record["files"])


def test_explain_a_chosen_class(run_dir: Path, series: Path, tmp_path: Path) -> None:
    record = explain_input(run_dir, series, tmp_path, class_name="malignant", n_slices=1)
    assert record["class_name"] == "malignant" and len(record["slices"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lime"}, "unknown method"),
        ({"class_name": "cancer"}, "unknown class 'cancer'"),
        ({"n_slices": 0}, "at least 1"),
    ],
)
def test_user_errors(
    run_dir: Path, series: Path, tmp_path: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        explain_input(run_dir, series, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_missing_run_and_input(run_dir: Path, series: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model.json"):
        explain_input(tmp_path / "no-run", series, tmp_path / "out")
    with pytest.raises(InputError):
        explain_input(run_dir, tmp_path / "no-image", tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        explain_input(run_dir, series, tmp_path / "file")


def test_cli_prints_the_written_files(run_dir: Path, series: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(explain)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, [str(run_dir), str(series), "-o", str(out), "--method", "gradcampp"]
    )
    assert result.exit_code == 0, result.output
    printed = [Path(line) for line in result.output.splitlines() if line.startswith(str(out))]
    assert printed[0] == out / "heatmap.nii.gz" and printed[-1] == out / "explanation.json"
    assert all(path.is_file() for path in printed)
    assert "gradcampp explanation of" in result.output

    bad = CliRunner().invoke(app, [str(run_dir), str(series), "-o", str(out), "-m", "x"])
    assert isinstance(bad.exception, InputError)


@pytest.mark.slow  # explains with every member model
def test_an_ensemble_is_explained_by_all_its_members(
    ensemble_run_dir: Path, series: Path, tmp_path: Path
) -> None:
    record = explain_input(ensemble_run_dir, series, tmp_path / "all")
    assert record["n_models"] == 2
    assert record["probabilities"] == pytest.approx(Predictor(ensemble_run_dir).predict(series))
    single = explain_input(ensemble_run_dir / "fold_1", series, tmp_path / "one")
    assert single["n_models"] == 1

    def heat(folder: Path) -> np.ndarray:
        image: Any = nib.load(str(folder / "heatmap.nii.gz"))
        return np.asarray(image.dataobj, dtype=np.float32)

    both, first = heat(tmp_path / "all"), heat(tmp_path / "one")
    assert both.shape == first.shape and both.max() <= 1.0
    assert not np.allclose(both, first, atol=1e-3)
