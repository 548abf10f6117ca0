from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medsight.errors import InputError
from medsight.imaging.inference.onnx_export import export_onnx
from medsight.imaging.inference.onnx_inference import OnnxPredictor, onnx_probabilities
from medsight.imaging.inference.onnx_run import ONNX_FILE, export_run, open_run_onnx
from medsight.imaging.inference.predictor import predict_probabilities
from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract

TOLERANCE = 1e-4


def _trained_looking(model: nn.Module, seed: int) -> nn.Module:
    """Give batch norms non-trivial running statistics, so eval and train mode differ."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert module.running_mean is not None and module.running_var is not None
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
    return model


def _torch_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def test_lungct_cnn_3d_onnx_matches_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _trained_looking(create_model("lungct-cnn"), seed=1).train()  # exported in eval
    path = export_onnx(model, (2, 1, 40, 64, 96), tmp_path / "m.onnx")
    assert model.training  # the caller's mode is given back
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary left behind

    arrays = np.random.default_rng(0).random((3, 40, 64, 96), dtype=np.float32)
    predictor = OnnxPredictor(path)
    logits = predictor.predict_logits(arrays[:, None])  # batch 3: the batch axis is dynamic
    expected = _torch_logits(model, arrays[:, None])
    assert np.ptp(expected) > 1e-2  # outputs that differ enough for the check to mean something
    assert np.abs(logits - expected).max() < TOLERANCE
    assert np.abs(_softmax(logits) - _softmax(expected)).max() < TOLERANCE

    onnx_probs = onnx_probabilities(predictor, arrays, batch_size=2)
    torch_probs = predict_probabilities(model, arrays, batch_size=2)
    assert onnx_probs.dtype == np.float32 and onnx_probs.shape == (3, 3)
    assert np.abs(onnx_probs - torch_probs).max() < TOLERANCE
    no_flip = onnx_probabilities(predictor, arrays, flip_tta=False)
    assert np.abs(no_flip - _softmax(expected)).max() < TOLERANCE


@pytest.mark.slow  # an ONNX export; the 3D lungct-cnn one stays in the fast lane
def test_resnet18_small_2d_onnx_matches_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _trained_looking(
        create_model("resnet18-small", in_channels=1, num_classes=4, spatial_dims=2), seed=2
    )
    path = export_onnx(model, (2, 1, 28, 28), tmp_path / "small.onnx")
    images = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    predictor = OnnxPredictor(path)
    expected = _torch_logits(model, images[:, None])
    logits = predictor.predict_logits(images[:, None])
    assert logits.shape == (5, 4) and np.ptp(expected) > 1e-2
    assert np.abs(logits - expected).max() < TOLERANCE
    assert np.abs(_softmax(logits) - _softmax(expected)).max() < TOLERANCE

    flipped = _torch_logits(model, np.ascontiguousarray(images[:, None, :, ::-1]))
    tta = (_softmax(expected) + _softmax(flipped)) / 2
    assert np.abs(onnx_probabilities(predictor, images, batch_size=4) - tta).max() < TOLERANCE


def test_wrong_input_shape_is_a_clear_error(tmp_path: Path) -> None:
    model = create_model("resnet18-small", in_channels=1, num_classes=2, spatial_dims=2)
    predictor = OnnxPredictor(export_onnx(model, (2, 1, 28, 28), tmp_path / "m.onnx"))
    assert predictor.input_shape == (None, 1, 28, 28)
    with pytest.raises(InputError, match=r"takes input \(N, 1, 28, 28\), got \(1, 1, 64, 64\)"):
        onnx_probabilities(predictor, np.zeros((1, 64, 64), dtype=np.float32))


def test_unreadable_or_missing_onnx_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such ONNX model"):
        OnnxPredictor(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        OnnxPredictor(tmp_path / "bad.onnx")


def _run(tmp_path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    contract = ModelContract(
        model_name="lungct-cnn",
        class_names=["normal", "nodule", "mass"],
        preprocess=PreprocessContract(shape=(16, 32, 32)),
        model_kwargs={"depth": 3},
        seed=seed,
    )
    save_checkpoint(tmp_path, create_model("lungct-cnn", depth=3), contract)
    return tmp_path


def test_run_folder_onnx_is_used_only_while_it_matches_the_weights(tmp_path: Path) -> None:
    run = _run(tmp_path, seed=0)
    assert open_run_onnx(run) is None  # nothing exported yet: predict stays on PyTorch
    assert export_run(run) == run / ONNX_FILE
    predictor = open_run_onnx(run)
    assert predictor is not None and predictor.input_shape == (None, 1, 16, 32, 32)
    assert predictor.metadata["model_name"] == "lungct-cnn"

    _run(tmp_path, seed=1)  # retrained: new weights, the old model.onnx is stale
    with pytest.raises(InputError, match="not exported from this folder's model.safetensors"):
        open_run_onnx(run)
