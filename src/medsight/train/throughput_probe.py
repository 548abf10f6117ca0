"""How fast this machine trains a given network: seconds per training step, measured.

The probe runs the engine's own loop (`fit`: Fabric, channels-last, the config's precision,
the optimiser step) for a few steps on one synthetic batch of the real input shape and
times each step after a warm-up step (oneDNN builds its kernels on the first). It takes a
few seconds, so a plan can be fitted to the machine it runs on (`medsight demo` uses it to
choose resolution and epochs for its time budget) instead of stopping training at whatever
epoch a wall-clock cut-off lands on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from medsight.train.config import LoopConfig
from medsight.train.loop import Batch, LoopHooks, StoppingKey, TrainedEpoch, fit

#: steps timed after the warm-up step (their median is reported)
PROBE_STEPS = 3


def seconds_per_step(
    config: LoopConfig,
    build_model: Callable[[], nn.Module],
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    batch: Batch,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    steps: int = PROBE_STEPS,
) -> float:
    """Median wall seconds of one training step (forward, loss, backward, optimiser) on
    ``batch`` through `fit` with ``config`` (one epoch of ``steps + 1`` identical batches;
    the first is a warm-up and not counted)."""
    marks: list[float] = []

    def batches(generator: torch.Generator, epoch: int) -> Iterator[Batch]:
        for _ in range(steps + 1):
            marks.append(time.perf_counter())
            yield batch
        marks.append(time.perf_counter())

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], StoppingKey]:
        return {}, (0.0, 0.0)

    hooks = LoopHooks(
        build_model=build_model,
        make_optimizer=make_optimizer,
        epoch_batches=batches,
        loss=loss,
        validate=validate,
        final_model=lambda state: build_model(),
        tolerance=0.0,
    )
    probe_config = config.model_copy(update={"max_epochs": 1, "max_minutes": 60.0})
    fit(probe_config, hooks)
    durations = [b - a for a, b in zip(marks[1:-1], marks[2:], strict=True)]
    return statistics.median(durations)
