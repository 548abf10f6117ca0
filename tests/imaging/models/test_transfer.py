import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from medsight.errors import InputError
from medsight.imaging.models.checkpoint import ModelContract
from medsight.imaging.models.registry import create_model
from medsight.imaging.models.transfer import (
    check_compatible,
    freeze_backbone,
    head_layer,
    load_pretrained,
    param_groups,
)
from medsight.imaging.preprocess.contract import PreprocessContract

HEAD = "net.fc."


def _model(seed: int, num_classes: int = 3, in_channels: int = 1, name: str = "resnet18"):
    torch.manual_seed(seed)
    return create_model(name, in_channels=in_channels, num_classes=num_classes, spatial_dims=2)


def _save(model: nn.Module, path: Path, prefix: str = "net.", add: str = "") -> Path:
    state = {
        add + k.removeprefix(prefix): v.detach().contiguous() for k, v in model.state_dict().items()
    }
    save_file(state, str(path))
    return path


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_head_is_replaced_when_classes_differ_and_backbone_equals_the_file(
    tmp_path: Path,
) -> None:
    source = _model(seed=1, num_classes=5)
    weights = _save(source, tmp_path / "src.safetensors", prefix="")
    target = _model(seed=2, num_classes=3)
    fresh = _state(target)

    report = load_pretrained(target, weights)

    after, file_state = target.state_dict(), source.state_dict()
    for name in after:
        if name.startswith(HEAD):
            assert torch.equal(after[name], fresh[name]), name  # the fresh head survives
        else:
            assert torch.equal(after[name], file_state[name]), name
    assert set(report.skipped) == {"net.fc.weight", "net.fc.bias"}
    assert "shape differs" in report.skipped["net.fc.weight"]
    assert not report.missing and not report.unused
    assert len(report.loaded) == len(after) - 2
    assert "skipped 2" in report.summary()
    assert target(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_same_classes_without_replace_head_loads_the_head_too(tmp_path: Path) -> None:
    source = _model(seed=1)
    weights = _save(source, tmp_path / "src.safetensors", prefix="")
    target = _model(seed=2)
    report = load_pretrained(target, weights, replace_head=False)
    assert not report.skipped
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_replace_head_keeps_a_fresh_head_even_when_shapes_agree(tmp_path: Path) -> None:
    weights = _save(_model(seed=1), tmp_path / "src.safetensors", prefix="")
    target = _model(seed=2)
    fresh = target.net.fc.weight.detach().clone()
    report = load_pretrained(target, weights)
    assert torch.equal(target.net.fc.weight, fresh)
    assert report.skipped["net.fc.weight"] == "head replaced"


def test_class_count_change_without_replace_head_is_refused(tmp_path: Path) -> None:
    weights = _save(_model(seed=1, num_classes=5), tmp_path / "src.safetensors", prefix="")
    target = _model(seed=2)
    before = _state(target)
    with pytest.raises(InputError, match=r"net\.fc\.weight.*replace_head=True"):
        load_pretrained(target, weights, replace_head=False)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_plain_monai_and_ddp_names_are_matched_under_the_wrapper(tmp_path: Path) -> None:
    source = _model(seed=1)
    # a bare MONAI ResNet's names, saved from a DistributedDataParallel wrapper
    weights = _save(source, tmp_path / "monai.safetensors", prefix="net.", add="module.")
    target = _model(seed=2)
    report = load_pretrained(target, weights)
    assert torch.equal(target.net.conv1.weight, source.net.conv1.weight)
    assert not report.unused


def test_other_input_channels_are_refused_naming_the_tensor(tmp_path: Path) -> None:
    weights = _save(_model(seed=1, in_channels=3), tmp_path / "rgb.safetensors", prefix="")
    target = _model(seed=2, in_channels=1)
    with pytest.raises(InputError, match=r"net\.conv1\.weight: shape differs.*\(64, 3, 7, 7\)"):
        load_pretrained(target, weights)


def test_non_strict_backbone_skips_what_does_not_fit(tmp_path: Path) -> None:
    source = _model(seed=1, in_channels=3)
    weights = _save(source, tmp_path / "rgb.safetensors", prefix="")
    target = _model(seed=2, in_channels=1)
    stem = target.net.conv1.weight.detach().clone()
    report = load_pretrained(target, weights, strict_backbone=False)
    assert "net.conv1.weight" in report.skipped
    assert torch.equal(target.net.conv1.weight, stem)
    assert torch.equal(target.net.layer4[1].conv2.weight, source.net.layer4[1].conv2.weight)


def test_missing_backbone_tensor_is_refused_when_strict(tmp_path: Path) -> None:
    state = {k: v.contiguous() for k, v in _model(seed=1).state_dict().items()}
    del state["net.layer2.0.conv1.weight"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(InputError, match=r"net\.layer2\.0\.conv1\.weight: not in the file"):
        load_pretrained(_model(seed=2), tmp_path / "partial.safetensors")
    report = load_pretrained(
        _model(seed=2), tmp_path / "partial.safetensors", strict_backbone=False
    )
    assert report.missing == ("net.layer2.0.conv1.weight",)


def test_a_file_for_another_model_is_refused(tmp_path: Path) -> None:
    weights = _save(_model(seed=1, name="lungct-cnn"), tmp_path / "cnn.safetensors", prefix="")
    with pytest.raises(InputError, match="shares no tensor name"):
        load_pretrained(_model(seed=2), weights)


def test_torch_pickle_named_safetensors_is_refused_without_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "weights.safetensors"
    torch.save(_model(seed=1).state_dict(), path)

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("a user-supplied file was unpickled")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(InputError, match="not a safetensors file"):
        load_pretrained(_model(seed=2), path)


@pytest.mark.parametrize("content", [b"", b"abc", b"\x80\x02}q\x00.", "truncated"])
def test_empty_short_truncated_or_pickled_bytes_are_refused(
    tmp_path: Path, content: bytes | str
) -> None:
    path = tmp_path / "w.safetensors"
    if content == "truncated":
        whole = _save(_model(seed=1), tmp_path / "whole.safetensors").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(InputError, match="not a safetensors file"):
        load_pretrained(_model(seed=2), path)


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such weights file"):
        load_pretrained(_model(seed=2), tmp_path / "nope.safetensors")


def test_frozen_backbone_gets_no_gradient_and_head_does() -> None:
    model = _model(seed=1)
    frozen = freeze_backbone(model)
    for name, param in model.named_parameters():
        assert param.requires_grad == name.startswith(HEAD), name
    assert frozen and not any(n.startswith(HEAD) for n in frozen)
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    assert model.net.fc.weight.grad is not None
    assert model.net.conv1.weight.grad is None


@pytest.mark.parametrize("name", ["resnet18", "efficientnet-b0", "lungct-cnn"])
def test_param_groups_partition_the_parameters(name: str) -> None:
    model = _model(seed=1, name=name)
    groups = param_groups(model, backbone_lr=1e-4, head_lr=1e-2)
    ids = [[id(p) for p in g["params"]] for g in groups]
    assert [g["lr"] for g in groups] == [1e-4, 1e-2]
    assert all(ids) and not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == sorted(id(p) for p in model.parameters())
    head = dict(model.named_modules())[head_layer(model)]
    assert set(ids[1]) == {id(p) for p in head.parameters()}
    optimiser = torch.optim.AdamW(groups)
    assert [g["lr"] for g in optimiser.param_groups] == [1e-4, 1e-2]


def test_a_model_without_a_named_head_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="head_layer"):
        freeze_backbone(nn.Sequential(nn.Linear(2, 2)))


def _contract() -> ModelContract:
    return ModelContract(
        model_name="resnet18",
        class_names=["normal", "nodule"],
        in_channels=1,
        spatial_dims=3,
        preprocess=PreprocessContract(),
        seed=0,
    )


def test_matching_contract_passes() -> None:
    check_compatible(_contract(), 1, 3, ["normal", "nodule"], model_name="resnet18")
    check_compatible(_contract(), 1, 3, None)  # classes free: the head will be replaced


@pytest.mark.parametrize(
    ("in_channels", "spatial_dims", "classes", "message"),
    [
        (3, 3, ["normal", "nodule"], "in_channels 1 vs 3"),
        (1, 2, ["normal", "nodule"], "spatial_dims 3 vs 2"),
        (1, 3, ["nodule", "normal"], r'classes \["normal", "nodule"\] vs \["nodule", "normal"\]'),
        (1, 3, ["normal"], "classes"),
    ],
)
def test_contract_mismatch_names_what_differs(
    in_channels: int, spatial_dims: int, classes: list[str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        check_compatible(_contract(), in_channels, spatial_dims, classes)


def test_every_mismatch_is_reported_at_once() -> None:
    with pytest.raises(InputError) as error:
        check_compatible(_contract(), 3, 2, ["a"], model_name="resnet50")
    text = str(error.value)
    for part in ("model 'resnet18' vs 'resnet50'", "in_channels", "spatial_dims", "classes"):
        assert part in text
