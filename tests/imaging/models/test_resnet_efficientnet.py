import pytest
import torch

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
