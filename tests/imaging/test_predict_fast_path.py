"""The fast predict path gives the reference path's predictions (issue 15).

Classification averages a mirrored pass in the same batch and runs with ONNX Runtime by
default (exported when the run is loaded, never written into the run); segmentation blends
its windows in batches and runs them with ONNX Runtime too. Each must predict what eager
PyTorch fp32 predicts: probabilities within 1e-4, identical label maps.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medsight.hardware import native_bf16
from medsight.imaging.inference.onnx_run import run_onnx
from medsight.imaging.inference.predictor import Predictor, predict_probabilities
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract

TOLERANCE = 1e-4


def _classify_run(folder: Path) -> Path:
    torch.manual_seed(0)
    contract = ModelContract(
        model_name="lungct-cnn",
        class_names=["normal", "nodule", "mass"],
        preprocess=PreprocessContract(shape=(16, 32, 32)),
        model_kwargs={"depth": 3},
        seed=0,
    )
    save_checkpoint(folder, create_model("lungct-cnn", depth=3), contract)
    return folder


def _segment_run(folder: Path) -> Path:
    torch.manual_seed(0)
    contract = ModelContract(
        model_name="unet",
        task="segment",
        class_names=["background", "lung", "nodule"],
        preprocess=PreprocessContract(shape=None, crop_to="center", mask_outside_lungs=False),
        model_kwargs={"depth": 3, "base_filters": 8},
        patch_size=(16, 32, 32),
        label_values=[1, 2],
        seed=0,
    )
    model = create_model("unet", num_classes=3, depth=3, base_filters=8)
    save_checkpoint(folder, model, contract)
    return folder


def _arrays(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).random((n, *shape), dtype=np.float32)


def test_mirrored_pass_in_one_batch_gives_the_two_pass_probabilities(tmp_path: Path) -> None:
    model = Predictor(_classify_run(tmp_path), use_onnx=False).model
    x = torch.from_numpy(_arrays(1, (16, 32, 32)))[:, None]
    with torch.no_grad():
        two_pass = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2
    one_batch = predict_probabilities(model, x[:, 0].numpy())
    assert np.ptp(two_pass.numpy()) > 1e-3  # outputs that differ enough to mean something
    assert np.abs(one_batch - two_pass.numpy()).max() < TOLERANCE


def test_classifier_runs_on_onnx_runtime_without_writing_into_the_run(tmp_path: Path) -> None:
    run = _classify_run(tmp_path)
    before = sorted(p.name for p in run.iterdir())
    fast, eager = Predictor(run), Predictor(run, use_onnx=False)
    assert fast.onnx is not None and eager.onnx is None
    assert sorted(p.name for p in run.iterdir()) == before  # a release folder stays as it was
    for n in (1, 3):  # one series (the CLI's usual call) and a batch
        arrays = _arrays(n, (16, 32, 32))
        assert np.abs(fast.predict_array(arrays) - eager.predict_array(arrays)).max() < TOLERANCE


def test_without_onnxruntime_prediction_falls_back_to_pytorch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _classify_run(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    assert run_onnx(run) is None
    predictor = Predictor(run)
    assert predictor.onnx is None
    assert predictor.predict_array(_arrays(1, (16, 32, 32))).shape == (1, 3)


def test_segmenter_on_onnx_runtime_gives_pytorchs_label_map(tmp_path: Path) -> None:
    run = _segment_run(tmp_path)
    fast, eager = Segmenter(run), Segmenter(run, use_onnx=False)
    assert fast.onnx is not None and eager.onnx is None
    image = _arrays(1, (20, 40, 50))[0]  # 2 x 2 x 2 windows, padded nowhere
    p_fast, p_eager = fast.probabilities(image), eager.probabilities(image)
    assert p_fast.shape == p_eager.shape == (3, 20, 40, 50)
    assert float((p_fast - p_eager).abs().max()) < TOLERANCE
    assert np.array_equal(p_fast.numpy().argmax(0), p_eager.argmax(0).numpy())


def test_bf16_asks_for_pytorch_autocast(tmp_path: Path) -> None:
    run = _classify_run(tmp_path)
    assert Predictor(run, bf16=True).onnx is None
    assert Segmenter(_segment_run(tmp_path / "seg"), bf16=True).onnx is None


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16 (avx512_bf16/amx)")
def test_bf16_probabilities_stay_close_to_fp32(tmp_path: Path) -> None:
    run = _classify_run(tmp_path)
    arrays = _arrays(2, (16, 32, 32))
    fp32 = Predictor(run, use_onnx=False).predict_array(arrays)
    bf16 = Predictor(run, bf16=True).predict_array(arrays)
    assert np.abs(bf16 - fp32).max() < 1e-2
