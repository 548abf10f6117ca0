"""Seconds per training step and per inference window of the imaging networks, measured
on this machine with the plan's real input sizes (`medsight.train.throughput_probe`).

What `medsight demo` plans its epochs and resolution from: the classifier at candidate
input shapes, the segmentation network at its patch (training steps and the sliding-window
forwards its per-epoch validation runs).
"""

from __future__ import annotations

import math
import statistics
import time

import torch
import torch.nn.functional as F

from medsight.imaging.inference.predictor import with_channel_axis
from medsight.imaging.preprocess.plan import Plan
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_fit import build_model
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.imaging.tasks.segment_fit import build_segmenter, segmentation_loss
from medsight.train.throughput_probe import seconds_per_step


def classify_step_seconds(plan: Plan, config: TrainConfig, num_classes: int) -> float:
    """Seconds of one training step of ``config``'s classifier on a batch of the plan's
    input shape (``config.batch_size`` samples)."""
    shape = tuple(plan.preprocess.shape or ())
    generator = torch.Generator().manual_seed(0)
    x = with_channel_axis(
        torch.rand((config.batch_size, *shape), generator=generator), config.spatial_dims
    )
    y = torch.arange(config.batch_size) % num_classes
    return seconds_per_step(
        config,
        lambda: build_model(config, num_classes),
        lambda m: torch.optim.Adam(m.parameters(), lr=config.learning_rate),
        (x, y),
        lambda out, target: F.cross_entropy(out.float(), target),
    )


def segment_step_seconds(config: SegmentTrainConfig, num_classes: int) -> float:
    """Seconds of one training step of ``config``'s segmentation network on a patch batch."""
    generator = torch.Generator().manual_seed(0)
    size = (config.batch_size, 1, *config.patch_size)
    x = torch.rand(size, generator=generator)
    y = torch.randint(0, num_classes, size, generator=generator)
    return seconds_per_step(
        config,
        lambda: build_segmenter(config, num_classes),
        lambda m: torch.optim.AdamW(m.parameters(), lr=config.learning_rate),
        (x, y),
        segmentation_loss(config),
    )


def segment_window_seconds(config: SegmentTrainConfig, num_classes: int, repeats: int = 3) -> float:
    """Seconds of one sliding-window forward (one patch, inference mode) of the network."""
    model = build_segmenter(config, num_classes).eval()
    x = torch.rand((1, 1, *config.patch_size)).contiguous(memory_format=torch.channels_last_3d)
    model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    times = []
    with torch.inference_mode():
        model(x)  # warm-up: kernels are built on the first call
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def windows_per_volume(plan: Plan, patch: tuple[int, int, int], overlap: float) -> int:
    """Sliding windows over a median-sized volume of the plan (at its target spacing)."""
    fp = plan.fingerprint
    target = plan.preprocess.spacing_mm
    count = 1
    for axis in range(3):
        size = fp.shape_vox.median[axis] * fp.spacing_mm.median[axis] / target[axis]
        step = max(1.0, patch[axis] * (1 - overlap))
        count *= max(1, math.ceil(max(0.0, size - patch[axis]) / step) + 1)
    return count
