import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from medsight.imaging.inference.sliding_window import (
    gaussian_weights,
    sliding_window_probabilities,
    window_starts,
)
from medsight.imaging.models.registry import create_model


class Pointwise(torch.nn.Module):
    """A 1x1x1 network: each voxel's output depends on that voxel only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _full(model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model.eval()(torch.from_numpy(image)[None, None]), 1)[0]


def test_window_starts_cover_the_axis_flush_with_both_ends() -> None:
    assert window_starts(10, 16, 0.5) == [0]
    starts = window_starts(100, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 16 for a, b in zip(starts, starts[1:], strict=False))


def test_gaussian_peaks_at_the_centre_and_never_vanishes() -> None:
    w = gaussian_weights((9, 17, 17))
    assert w[4, 8, 8] == w.max() == 1.0 and float(w.min()) > 0


def test_one_window_covering_the_volume_equals_full_volume_inference() -> None:
    torch.manual_seed(0)
    model = create_model("dynunet", num_classes=3, depth=3, base_filters=4)
    image = np.random.default_rng(0).normal(size=(8, 24, 24)).astype(np.float32)
    out = sliding_window_probabilities(model, image, (8, 24, 24), 3, channels_last=False)
    assert torch.allclose(out, _full(model, image), atol=1e-6)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_blended_windows_equal_full_volume_inference_for_a_local_model(overlap: float) -> None:
    torch.manual_seed(0)
    model = Pointwise()
    image = np.random.default_rng(1).normal(size=(13, 40, 37)).astype(np.float32)
    out = sliding_window_probabilities(model, image, (8, 16, 16), 3, overlap=overlap)
    assert out.shape == (3, 13, 40, 37)
    assert torch.allclose(out, _full(model, image), atol=1e-5)


def test_image_smaller_than_the_patch_is_padded_and_cut_back() -> None:
    model = Pointwise()
    image = np.ones((3, 10, 12), dtype=np.float32)
    out = sliding_window_probabilities(model, image, (8, 16, 16), 3)
    assert out.shape == (3, 3, 10, 12)
    assert torch.allclose(out, _full(model, image), atol=1e-5)


def test_mirror_tta_of_a_symmetric_model_changes_nothing_and_batches_agree() -> None:
    model = Pointwise()
    image = np.random.default_rng(2).normal(size=(8, 32, 32)).astype(np.float32)
    plain = sliding_window_probabilities(model, image, (8, 16, 16), 3, overlap=0.5)
    mirrored = sliding_window_probabilities(
        model, image, (8, 16, 16), 3, overlap=0.5, mirror_axes=(2,), batch_bytes=1
    )
    assert torch.allclose(plain, mirrored, atol=1e-5)


def test_matches_monai_sliding_window_with_gaussian_blending() -> None:
    torch.manual_seed(0)
    model = create_model("dynunet", num_classes=3, depth=3, base_filters=4).eval()
    image = np.random.default_rng(3).normal(size=(16, 48, 48)).astype(np.float32)
    ours = sliding_window_probabilities(model, image, (8, 32, 32), 3, overlap=0.5)
    with torch.no_grad():
        theirs = sliding_window_inference(
            torch.from_numpy(image)[None, None],
            (8, 32, 32),
            4,
            lambda x: torch.softmax(model(x), 1),
            overlap=0.5,
            mode="gaussian",
        )[0]
    # window placement and Gaussian widths differ slightly (an untrained net on noise sits
    # near ties, so a few argmaxes flip); the probabilities agree closely
    assert (ours.argmax(0) == theirs.argmax(0)).float().mean() > 0.95
    assert float((ours - theirs).abs().mean()) < 0.02
