"""Every registered model, whatever its family: the surface the rest of medsight relies on.

Parametrised over the registry itself (as timm's test_models.py), so a family added with
`@register_model` is checked without editing this file: forward and backward, the
features/head surface and its Grad-CAM layer (classifiers), per-voxel logits
(segmenters), and ONNX Runtime giving the same logits as PyTorch.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from medsight.imaging.explain.gradcam import gradcam_volume
from medsight.imaging.inference.onnx_export import export_onnx
from medsight.imaging.inference.onnx_inference import OnnxPredictor
from medsight.imaging.models.registry import create_model, list_models

CLASSIFIERS = list_models("classify")
SEGMENTERS = list_models("segment")


def _side(name: str) -> int:
    # small-image presets keep full resolution through the stem: MedMNIST size
    return 28 if name.endswith("-small") else 64


def _segmenter(name: str, dims: int) -> torch.nn.Module:
    kwargs = {"depth": 5, "base_filters": 4} if name == "basicunet" else {"base_filters": 4}
    return create_model(name, in_channels=1, num_classes=3, spatial_dims=dims, **kwargs)


def test_the_registry_has_both_kinds() -> None:
    assert CLASSIFIERS and SEGMENTERS
    assert not set(CLASSIFIERS) & set(SEGMENTERS)


@pytest.mark.slow  # 3D DenseNet-121 and ResNet-50 steps: tens of seconds
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_trains_one_step_and_every_weight_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=2, num_classes=3, spatial_dims=2).train()
    x, y = torch.rand(4, 2, _side(name), _side(name)), torch.tensor([0, 1, 2, 1])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert torch.isfinite(loss) and not missing


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_cam_layer_is_a_spatial_map_hooked_once(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=2).eval()
    seen: list[torch.Tensor] = []
    layer = dict(model.named_modules())[model.cam_layer]
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    x = torch.rand(1, 1, _side(name), _side(name))
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.forward_head(features)
    handle.remove()
    assert len(seen) == 1  # not a module shared by several layers
    # a spatial map Grad-CAM can weigh: the last block's or, for a finer map, an earlier one
    assert seen[0].ndim == 4 and seen[0].shape[0] == 1 and min(seen[0].shape[-2:]) >= 2
    assert logits.shape == (1, 3)


@pytest.mark.slow  # 3D Grad-CAM on every classifier: tens of seconds
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_gradcam_on_every_classifier_in_3d(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=3).eval()
    side = 28 if name.endswith("-small") else 32
    x = torch.rand(1, 1, side, side, side)
    heat = gradcam_volume(model, x, class_index=1, target_layer=model.cam_layer)
    assert heat.shape == (side, side, side) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
    with torch.no_grad():  # no hooks left behind
        assert torch.equal(model(x), model(x))


@pytest.mark.slow  # an ONNX export of every classifier: tens of seconds
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_onnx_matches_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=2).eval()
    side = _side(name)
    x = torch.rand(3, 1, side, side)
    predictor = OnnxPredictor(export_onnx(model, (2, 1, side, side), tmp_path / "m.onnx"))
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(predictor.predict_logits(x.numpy()) - expected).max() < 1e-4


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_trains_one_step(name: str) -> None:
    torch.manual_seed(0)
    model = _segmenter(name, 2).train()
    x, y = torch.rand(2, 1, 32, 32), torch.randint(0, 3, (2, 32, 32))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert torch.isfinite(loss) and not missing


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_onnx_matches_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _segmenter(name, 3).eval()
    x = torch.rand(2, 1, 16, 32, 32)
    session = OnnxPredictor(export_onnx(model, (2, 1, 16, 32, 32), tmp_path / "m.onnx"))
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(session.predict_logits(x.numpy()) - expected).max() < 1e-4
