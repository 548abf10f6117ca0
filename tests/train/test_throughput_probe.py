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


def test_keep_last_returns_the_final_epoch_not_the_best_validation_one():
    from medsight.train.loop import LoopHooks, fit

    scores = iter([0.9, 0.5, 0.6])  # the first epoch validates best

    def run(keep_last: bool) -> int:
        nonlocal scores
        scores = iter([0.9, 0.5, 0.6])
        config = LoopConfig(
            model_name="probe", spatial_dims=2, channels_last=False, max_epochs=3,
            keep_last=keep_last, patience=3,
        )  # fmt: skip
        hooks = LoopHooks(
            build_model=lambda: nn.Linear(4, 2),
            make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
            epoch_batches=lambda g, e: iter([(torch.rand(8, 4), torch.arange(8) % 2)]),
            loss=F.cross_entropy,
            validate=lambda trained: ({}, (next(scores), 0.0)),
            final_model=lambda state: nn.Linear(4, 2),
            tolerance=0.0,
        )
        return fit(config, hooks).best_epoch

    assert run(keep_last=False) == 1
    assert run(keep_last=True) == 3
