from pathlib import Path

import pytest
import torch

from medsight.errors import InputError
from medsight.imaging.models.checkpoint import ModelContract, load_checkpoint, save_checkpoint
from medsight.imaging.models.registry import create_model, list_models
from medsight.imaging.preprocess.contract import PreprocessContract


def test_registry_offers_the_founding_cnn_and_densenet() -> None:
    assert {"lungct-cnn", "densenet121"} <= set(list_models())


@pytest.mark.slow  # 3D ResNet-50 and DenseNet-121, twice each: most of a minute
@pytest.mark.parametrize("name", list_models("classify"))
@pytest.mark.parametrize("dims", [2, 3])
def test_every_model_shapes_surface_and_determinism(name: str, dims: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_classes=3, spatial_dims=dims).eval()
    # small-image presets keep full resolution through the stem: test them at MedMNIST size
    side = 28 if name.endswith("-small") else None
    if dims == 3:
        shape = (2, 1, side, side, side) if side else (2, 1, 32, 64, 64)
    else:
        shape = (2, 1, side, side) if side else (2, 1, 64, 64)
    x = torch.rand(shape)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and out.dtype == torch.float32
        assert torch.equal(model.forward_head(model.forward_features(x)), out)
        assert torch.equal(model(x), out)
    assert model.cam_layer in dict(model.named_modules())


def test_lungct_cnn_has_five_conv_blocks_16_to_256() -> None:
    model = create_model("lungct-cnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 and linears[-1].out_features == 3


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="unknown model 'nope'"):
        create_model("nope")


def _contract() -> ModelContract:
    return ModelContract(
        model_name="lungct-cnn",
        class_names=["a", "b", "c"],
        preprocess=PreprocessContract(),
        seed=1,
    )


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = create_model("lungct-cnn").eval()
    save_checkpoint(tmp_path, model, _contract())
    loaded, contract = load_checkpoint(tmp_path)
    assert contract == _contract()
    x = torch.rand(1, 1, 32, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_corrupt_or_pickled_weights_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, create_model("lungct-cnn"), _contract())
    torch.save({"x": torch.zeros(1)}, tmp_path / "model.safetensors")  # a pickle, not safetensors
    with pytest.raises(InputError, match="not a readable safetensors"):
        load_checkpoint(tmp_path)


def test_weights_for_another_model_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, create_model("lungct-cnn", num_classes=2), _contract())
    with pytest.raises(InputError, match="do not match"):
        load_checkpoint(tmp_path)


def test_missing_run_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="medsight demo"):
        load_checkpoint(tmp_path)
