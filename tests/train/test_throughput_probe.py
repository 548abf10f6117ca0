"""The throughput probe times real training steps through the engine's loop."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medsight.train.config import LoopConfig
from medsight.train.throughput_probe import seconds_per_step


def test_probe_times_steps_and_a_bigger_batch_costs_more():
    config = LoopConfig(model_name="probe", spatial_dims=2, channels_last=False)
    steps_seen = []

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(64 * 64, 256), nn.ReLU(), nn.Linear(256, 3))

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        steps_seen.append(1)
        return F.cross_entropy(out, y)

    def batch(n: int):
        return torch.rand(n, 1, 64, 64), torch.arange(n) % 3

    def optimizer(m: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(m.parameters())

    small = seconds_per_step(config, build, optimizer, batch(2), loss, steps=3)
    assert len(steps_seen) == 4  # one warm-up step, three timed
    large = seconds_per_step(config, build, optimizer, batch(512), loss, steps=3)
    assert math.isfinite(small) and small > 0
    assert large > small
