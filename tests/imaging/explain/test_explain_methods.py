"""Grad-CAM++ and occlusion sensitivity: shapes, ranges, localisation, no side effects."""

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from monai.visualize import GradCAMpp
from torch import nn

from medsight.imaging.explain.attribution import attribution_map
from medsight.imaging.explain.gradcam_plus_plus import gradcam_plus_plus
from medsight.imaging.explain.occlusion import default_mask_size, occlusion_map

SHAPE = (12, 16, 16)
RIGHT_CUBE = (4, 6, 10)  # corner: the cube spans z 4..7, y 6..9, x 10..13 (class 1)


class TinyCNN2D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cube_mean_ratio(heat: np.ndarray) -> float:
    z, y, x = RIGHT_CUBE
    return float(heat[z : z + 4, y : y + 4, x : x + 4].mean() / max(heat.mean(), 1e-12))


def assert_unit_map(heat: np.ndarray, shape: tuple[int, ...]) -> None:
    assert heat.shape == shape
    assert heat.dtype == np.float32
    assert np.isfinite(heat).all()
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat.max() == pytest.approx(1.0)


def assert_untouched(model: nn.Module) -> None:
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks


@pytest.mark.slow  # 3D occlusion: one forward pass per patch
@pytest.mark.parametrize("method", ["gradcampp", "occlusion"])
def test_3d_map_shape_range_and_localisation(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor], method: str
) -> None:
    x = make_cube_volume(RIGHT_CUBE)
    with torch.no_grad():
        assert int(position_cnn(x).argmax()) == 1
    heat = attribution_map(position_cnn, x, 1, method, target_layer="features.4")
    assert_unit_map(heat, SHAPE)
    assert cube_mean_ratio(heat) > 2.0
    hot = np.unravel_index(np.argmax(heat), heat.shape)
    assert 3 <= hot[0] <= 8 and 5 <= hot[1] <= 10 and 9 <= hot[2] <= 14
    assert_untouched(position_cnn)


@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "occlusion"])
def test_2d_map_shape_and_range(method: str) -> None:
    torch.manual_seed(0)
    model = TinyCNN2D().eval()
    x = torch.rand(1, 1, 20, 24)
    x[0, 0, 5:10, 6:12] = 3.0
    heat = attribution_map(model, x, int(model(x).argmax()), method, target_layer="features.3")
    assert heat.shape == (20, 24) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
    assert_untouched(model)
    assert model.features[1].inplace


def test_gradcampp_differs_from_gradcam(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor]
) -> None:
    x = make_cube_volume(RIGHT_CUBE)
    plus = attribution_map(position_cnn, x, 1, "gradcampp", "features.4")
    plain = attribution_map(position_cnn, x, 1, "gradcam", "features.4")
    assert not np.allclose(plus, plain, atol=1e-3)


def test_gradcampp_survives_huge_logits(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor]
) -> None:
    """MONAI multiplies by exp(logit): a logit of 200 overflows float32 there, not here."""
    x = make_cube_volume(RIGHT_CUBE)
    shifted = with_shifted_logits(position_cnn, 200.0)
    reference = gradcam_plus_plus(position_cnn, x, 1, "features.4")
    heat = gradcam_plus_plus(shifted, x, 1, "features.4")
    np.testing.assert_allclose(heat, reference, atol=1e-5)
    # what MONAI alone gives for the same model: no usable map
    raw = GradCAMpp(shifted, "features.4", postprocessing=lambda m: m)(x.clone(), class_idx=1)
    assert not torch.isfinite(raw).all() or float(raw.max()) == 0.0


def with_shifted_logits(model: nn.Module, shift: float) -> nn.Module:
    shifted: Any = copy.deepcopy(model)
    with torch.no_grad():
        shifted.head[2].bias += shift
    return shifted


def test_frozen_submodule_and_gradients_kept(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor]
) -> None:
    model: Any = copy.deepcopy(position_cnn)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True  # in-place after a hooked layer breaks MONAI's hooks
    model.train()
    model.features[1].eval()
    x = make_cube_volume(RIGHT_CUBE)
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    with torch.inference_mode():
        gradcam_plus_plus(model, x, 1, "features.3")
        occlusion_map(model, x, 1, mask_size=6, overlap=0.0)
    assert model.training and not model.features[1].training and model.features[0].training
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert_untouched(model)
    after = [p.grad for p in model.parameters()]
    for a, b in zip(after, grads, strict=True):
        assert a is not None and torch.equal(a, b)


def test_occlusion_options(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor]
) -> None:
    x = make_cube_volume(RIGHT_CUBE)
    constant = occlusion_map(position_cnn, x, 1, mask_size=4, overlap=0.0, fill_value=0.0)
    assert_unit_map(constant, SHAPE)
    assert cube_mean_ratio(constant) > 2.0
    # a patch larger than the input is clipped to it: one position, a flat map
    whole = occlusion_map(position_cnn, x, 1, mask_size=(40, 40, 40))
    assert whole.shape == SHAPE and np.ptp(whole) < 1e-5
    assert default_mask_size((40, 72, 104)) == (10, 18, 26)
    assert default_mask_size((2, 3)) == (1, 1)


@pytest.mark.slow  # one forward pass per occluded patch
def test_occlusion_explains_the_asked_class(
    position_cnn: nn.Module, make_cube_volume: Callable[..., torch.Tensor]
) -> None:
    # hiding the right cube can only raise the probability of "left": nothing to show
    heat = occlusion_map(position_cnn, make_cube_volume(RIGHT_CUBE), 0)
    assert cube_mean_ratio(heat) < 1.0 or heat.max() == 0.0


def test_bad_arguments_raise(position_cnn: nn.Module) -> None:
    x = torch.rand(1, 1, *SHAPE)
    with pytest.raises(ValueError, match="not a module"):
        gradcam_plus_plus(position_cnn, x, 0, "features.99")
    with pytest.raises(ValueError, match=r"shape \(1, C, D, H, W\)"):
        gradcam_plus_plus(position_cnn, torch.rand(2, 1, *SHAPE), 0, "features.4")
    for index in (5, -1):
        with pytest.raises(ValueError, match="class_index"):
            gradcam_plus_plus(position_cnn, x, index, "features.4")
        with pytest.raises(ValueError, match="class_index"):
            occlusion_map(position_cnn, x, index)
    with pytest.raises(ValueError, match="overlap"):
        occlusion_map(position_cnn, x, 0, overlap=1.0)
    with pytest.raises(ValueError, match="mask_size"):
        occlusion_map(position_cnn, x, 0, mask_size=(4, 4))
    with pytest.raises(ValueError, match="unknown method"):
        attribution_map(position_cnn, x, 0, "lime")
    with pytest.raises(ValueError, match="cam_layer"):
        attribution_map(position_cnn, x, 0, "gradcam")
    assert_untouched(position_cnn)
