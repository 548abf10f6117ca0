import pytest
import torch

from medsight.imaging.models.registry import create_model, list_models, model_task


def test_segmentation_models_are_registered_for_segment() -> None:
    assert {"unet", "dynunet", "basicunet"} <= set(list_models("segment"))
    assert not set(list_models("segment")) & set(list_models("classify"))
    assert model_task("dynunet") == "segment" and model_task("lungct-cnn") == "classify"


@pytest.mark.parametrize("name", list_models("segment"))
@pytest.mark.parametrize("dims", [2, 3])
def test_every_segmentation_model_gives_per_voxel_logits(name: str, dims: int) -> None:
    torch.manual_seed(0)
    kwargs = {"depth": 5, "base_filters": 4} if name == "basicunet" else {"base_filters": 4}
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=dims, **kwargs).eval()
    shape = (2, 1, 16, 32, 32) if dims == 3 else (2, 1, 32, 32)
    x = torch.rand(shape)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3, *shape[2:]) and out.dtype == torch.float32
        assert torch.equal(model(x), out)


def test_dynunet_deep_supervision_adds_heads_in_training_only() -> None:
    model = create_model("dynunet", num_classes=3, depth=4, base_filters=4, deep_supervision=1)
    x = torch.rand(1, 1, 16, 32, 32)
    heads = model.train()(x)
    assert heads.shape[:3] == (1, 3, 3)  # (N, 1 + deep heads, classes, ...)
    assert model.eval()(x).shape == (1, 3, 16, 32, 32)


def test_bad_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        create_model("basicunet", depth=4)
