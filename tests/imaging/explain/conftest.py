"""A tiny 3D CNN trained to tell where a bright cube is, so its explanations mean something.

Class 0: the cube lies in the left half of the volume (small x); class 1: the right half.
The head pools the last feature map into a left and a right cell, so the class depends on
position, and an explanation of the trained model has to point at the cube.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

SHAPE = (12, 16, 16)
CUBE = 4


class PositionCNN(nn.Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(1, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.MaxPool3d(2),
            nn.Conv3d(8, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool3d((1, 1, 2)), nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cube_volume(corner_zyx: tuple[int, int, int], noise_seed: int = 0) -> torch.Tensor:
    """``(1, 1, *SHAPE)``: a faint noisy background with a bright cube at ``corner_zyx``."""
    generator = torch.Generator().manual_seed(noise_seed)
    x = 0.2 * torch.rand(1, 1, *SHAPE, generator=generator)
    z, y, w = corner_zyx
    x[0, 0, z : z + CUBE, y : y + CUBE, w : w + CUBE] = 1.0
    return x


def position_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = 0.2 * torch.rand(n, 1, *SHAPE, generator=generator)
    y = torch.arange(n) % 2
    half = SHAPE[2] // 2
    for i in range(n):
        z0 = int(torch.randint(0, SHAPE[0] - CUBE + 1, (1,), generator=generator))
        y0 = int(torch.randint(0, SHAPE[1] - CUBE + 1, (1,), generator=generator))
        low, high = (0, half - CUBE) if y[i] == 0 else (half, SHAPE[2] - CUBE)
        x0 = int(torch.randint(low, high + 1, (1,), generator=generator))
        x[i, 0, z0 : z0 + CUBE, y0 : y0 + CUBE, x0 : x0 + CUBE] = 1.0
    return x, y


@pytest.fixture(scope="session")
def position_cnn() -> PositionCNN:
    """A PositionCNN trained for 40 steps (about a second), in eval mode."""
    threads = torch.get_num_threads()
    # On tensors this small, thread-pool wake-ups cost more than the arithmetic.
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        model = PositionCNN()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        model.train()
        for _ in range(40):
            x, y = position_batch(16, generator)
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            x, y = position_batch(64, generator)
            accuracy = float((model(x).argmax(1) == y).float().mean())
        assert accuracy > 0.9, f"the cube task did not train (accuracy {accuracy:.2f})"
    finally:
        torch.set_num_threads(threads)
    return model


@pytest.fixture()
def make_cube_volume() -> Callable[..., torch.Tensor]:
    return cube_volume
