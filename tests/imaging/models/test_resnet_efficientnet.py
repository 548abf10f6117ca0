from pathlib import Path

import numpy as np
import pytest
import torch

from medsight.imaging.explain.gradcam import gradcam_volume
from medsight.imaging.inference.onnx_export import export_onnx
from medsight.imaging.inference.onnx_inference import OnnxPredictor
from medsight.imaging.models.registry import create_model, list_models

NEW = ["resnet18", "resnet50", "resnet18-small", "efficientnet-b0"]


def test_the_new_models_are_registered() -> None:
    assert set(NEW) <= set(list_models())


@pytest.mark.parametrize(
    ("name", "size", "features"),
    [
        ("resnet18", 64, (512, 2, 2)),  # stride-2 stem + max-pool + 3 strided stages: 1/32
        ("resnet50", 64, (2048, 2, 2)),
        ("resnet18-small", 28, (512, 4, 4)),  # no stem downsampling: 28 -> 28, 14, 7, 4
        ("efficientnet-b0", 64, (1280, 2, 2)),
    ],
)
def test_feature_maps_have_the_documented_width_and_stride(
    name: str, size: int, features: tuple[int, int, int]
) -> None:
    model = create_model(name, in_channels=2, num_classes=5, spatial_dims=2).eval()
    with torch.no_grad():
        maps = model.forward_features(torch.rand(2, 2, size, size))
        assert maps.shape == (2, *features)
        assert model.forward_head(maps).shape == (2, 5)


@pytest.mark.parametrize("name", NEW)
def test_cam_layer_outputs_the_feature_map(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=2).eval()
    seen: list[torch.Tensor] = []
    layer = dict(model.named_modules())[model.cam_layer]
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
    handle.remove()
    assert len(seen) == 1  # hooked once per pass: not a module shared by several layers
    assert torch.equal(seen[0], features)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet-b0"])
def test_gradcam_runs_on_the_cam_layer_in_3d(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=3).eval()
    x = torch.rand(1, 1, 32, 64, 64)
    heat = gradcam_volume(model, x, class_index=1, target_layer=model.cam_layer)
    assert heat.shape == (32, 64, 64) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
    with torch.no_grad():  # no hooks left behind: the model still runs and is unchanged
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", ["resnet18", "efficientnet-b0"])  # resnet50: same ops
def test_export_to_onnx_keeps_the_logits(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=2).eval()
    x = torch.rand(3, 1, 64, 64)
    predictor = OnnxPredictor(export_onnx(model, (2, 1, 64, 64), tmp_path / "m.onnx"))
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(predictor.predict_logits(x.numpy()) - expected).max() < 1e-4
