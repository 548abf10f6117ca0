import numpy as np
import pytest
import torch
from torch import nn

from medsight.imaging.explain.gradcam import gradcam_volume, top_slice
from medsight.imaging.explain.overlay import overlay_png

SHAPE = (12, 16, 16)


class TinyCNN(nn.Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(1, 4, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.MaxPool3d(2),
            nn.Conv3d(4, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool3d(1), nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cube_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = 0.2 * torch.rand(n, 1, *SHAPE, generator=generator)
    y = torch.arange(n) % 2
    for i in range(n):
        if y[i]:
            z0, y0, x0 = (int(torch.randint(0, s - 4, (1,), generator=generator)) for s in SHAPE)
            x[i, 0, z0 : z0 + 4, y0 : y0 + 4, x0 : x0 + 4] = 1.0
    return x, y


def train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer
) -> float:
    model.train()
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.fixture(scope="module")
def cube_model() -> TinyCNN:
    """A TinyCNN trained for a moment to tell volumes with a bright cube (class 1) apart."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    # On tensors this small, thread-pool wake-ups cost ~100x the arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(30):
            train_step(model, *cube_batch(8, generator), opt)
    finally:
        torch.set_num_threads(threads)
    return model


@pytest.mark.parametrize("target_layer", ["features.4", "features.3", "features.2"])
def test_heatmap_shape_range_and_dtype(cube_model: TinyCNN, target_layer: str) -> None:
    x = torch.rand(1, 1, *SHAPE)
    heat = gradcam_volume(cube_model, x, class_index=1, target_layer=target_layer)
    assert heat.shape == SHAPE
    assert heat.dtype == np.float32
    assert np.isfinite(heat).all()
    assert heat.min() >= 0.0 and heat.max() <= 1.0


def test_heatmap_concentrates_on_cube(cube_model: TinyCNN) -> None:
    x = torch.full((1, 1, *SHAPE), 0.1)
    x[0, 0, 6:10, 2:6, 9:13] = 1.0
    heat = gradcam_volume(cube_model, x, class_index=1, target_layer="features.4")
    inside = heat[6:10, 2:6, 9:13].mean()
    assert inside > 2 * heat.mean()
    assert 6 <= top_slice(heat) <= 9
    hot = np.unravel_index(np.argmax(heat), heat.shape)
    assert 5 <= hot[0] <= 10 and 1 <= hot[1] <= 6 and 8 <= hot[2] <= 13


def test_model_unchanged_and_still_trains(cube_model: TinyCNN) -> None:
    model = TinyCNN(inplace=True)  # in-place ReLU after a hooked conv breaks MONAI's hooks
    model.load_state_dict(cube_model.state_dict())
    model.train()
    model.features[1].eval()  # a deliberately frozen submodule keeps its own mode
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = cube_batch(4, torch.Generator().manual_seed(1))
    model(x).sum().backward()  # gradients being accumulated must survive Grad-CAM
    grads_before = [torch.clone(p.grad) for p in model.parameters() if p.grad is not None]

    with torch.no_grad():  # callers may be in inference code
        heat = gradcam_volume(model, x[1:2], class_index=1, target_layer="features.3")
    assert heat.max() > 0

    assert model.training and not model.features[1].training
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks
    grads_after = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads_after) == len(grads_before) == len(list(model.parameters()))
    for after, before in zip(grads_after, grads_before, strict=True):
        assert torch.equal(after, before)
    model.features[1].train()
    assert np.isfinite(train_step(model, x, y, opt))
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (4, 2)


def test_eval_model_stays_in_eval(cube_model: TinyCNN) -> None:
    cube_model.eval()
    gradcam_volume(cube_model, torch.rand(1, 1, *SHAPE), 0, "features.4")
    assert not any(m.training for m in cube_model.modules())


def test_bad_arguments_raise(cube_model: TinyCNN) -> None:
    x = torch.rand(1, 1, *SHAPE)
    with pytest.raises(ValueError, match="not a module"):
        gradcam_volume(cube_model, x, 0, "features.99")
    with pytest.raises(ValueError, match=r"shape \(1, C, D, H, W\)"):
        gradcam_volume(cube_model, torch.rand(2, 1, *SHAPE), 0, "features.4")
    with pytest.raises(ValueError, match="class_index"):
        gradcam_volume(cube_model, x, 5, "features.4")
    for module in cube_model.modules():
        assert not module._forward_hooks and not module._backward_hooks


def test_top_slice() -> None:
    heat = np.zeros(SHAPE, np.float32)
    heat[7, :4, :4] = 0.5
    heat[3, 0, 0] = 1.0
    assert top_slice(heat) == 7
    with pytest.raises(ValueError):
        top_slice(heat[0])


def test_overlay_png() -> None:
    png = overlay_png(
        np.zeros((16, 20), np.float32), np.ones((16, 20), np.float32), "t", aspect=2.0
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError):
        overlay_png(np.zeros((16, 20)), np.zeros((16, 16)), "t")
