"""The model-randomisation sanity check (Adebayo et al., 2018) on a model that learned."""

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from torch import nn

import medsight.imaging.explain.sanity as sanity
from medsight.imaging.explain.gradcam import gradcam_volume
from medsight.imaging.explain.sanity import randomisation_check, randomised_copy

RIGHT_CUBE = (4, 6, 10)


@pytest.fixture()
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: faster on one thread on a 2-core machine
    yield
    torch.set_num_threads(threads)


def test_gradcam_of_the_trained_model_passes(
    position_cnn: nn.Module,
    make_cube_volume: Callable[..., torch.Tensor],
    single_thread: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    x = make_cube_volume(RIGHT_CUBE)
    trained = gradcam_volume(position_cnn, x, 1, "features.4")
    z, y, w = RIGHT_CUBE
    assert trained[z : z + 4, y : y + 4, w : w + 4].mean() > 2 * trained.mean()

    state = {k: v.clone() for k, v in position_cnn.state_dict().items()}
    rhos = []
    for seed in range(3):
        result = randomisation_check(position_cnn, x, 1, "features.4", "gradcam", seed=seed)
        assert result["passed"], result
        assert abs(result["spearman"]) < 0.5
        rhos.append(result["spearman"])
    for key, value in position_cnn.state_dict().items():
        assert torch.equal(value, state[key])  # the trained model is left alone
    with capsys.disabled():
        print(f"\nGrad-CAM rank correlation, trained vs randomised (seeds 0-2): {rhos}")


def test_a_map_that_ignores_the_model_fails(
    position_cnn: nn.Module,
    make_cube_volume: Callable[..., torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check must be able to fail: a 'saliency' that is just the input's brightness."""
    x = make_cube_volume(RIGHT_CUBE)

    def brightness(model: nn.Module, x: torch.Tensor, *args: object) -> np.ndarray:
        return x[0, 0].numpy().astype(np.float32)

    monkeypatch.setattr(sanity, "attribution_map", brightness)
    result = randomisation_check(position_cnn, x, 1, None, "gradcam")
    assert result["spearman"] == pytest.approx(1.0) and not result["passed"]


def test_flat_maps(
    position_cnn: nn.Module,
    make_cube_volume: Callable[..., torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = make_cube_volume(RIGHT_CUBE)
    trained = position_cnn

    def flat_when_random(model: nn.Module, x: torch.Tensor, *args: object) -> np.ndarray:
        return x[0, 0].numpy() if model is trained else np.zeros(x.shape[2:], np.float32)

    monkeypatch.setattr(sanity, "attribution_map", flat_when_random)
    assert randomisation_check(trained, x, 1, None) == {"spearman": 0.0, "passed": True}
    monkeypatch.setattr(sanity, "attribution_map", lambda *a: np.zeros((2, 2, 2), np.float32))
    result = randomisation_check(trained, x, 1, None)
    assert np.isnan(result["spearman"]) and not result["passed"]


def test_randomised_copy(position_cnn: nn.Module) -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = randomised_copy(position_cnn, seed=0)
    assert torch.equal(torch.rand(1), expected_next)  # global random state untouched
    again = randomised_copy(position_cnn, seed=0)
    other = randomised_copy(position_cnn, seed=1)
    for (name, p), q, r, s in zip(
        position_cnn.named_parameters(),
        first.parameters(),
        again.parameters(),
        other.parameters(),
        strict=True,
    ):
        assert not torch.equal(p, q), name
        assert torch.equal(q, r) and not torch.equal(q, s)
    assert first.training == position_cnn.training
