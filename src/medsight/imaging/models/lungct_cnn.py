"""`lungct-cnn`: the founding example's 3D CNN for lung-CT classification.

Five blocks of conv(3x3x3) + ReLU + max-pool(2) widening 16 -> 256 channels, then global
max pooling (a nodule can be anywhere: the strongest local response is what matters) and
two fully connected layers to the class logits.

One addition to the original recipe: batch normalisation after each convolution
(``batch_norm=True``, the default). Trained from scratch on a few hundred CT volumes, the
plain conv+ReLU stack sat at chance for several epochs on the demo budget; with BN it starts
learning in the first epochs. ``batch_norm=False`` gives the original block.

Speed (measured on the demo's 40x64x104 input, batch 3, 2 cores; see
``bench/train_classify.py``): the first block works at full resolution with 16 channels, so
its batch norm, ReLU and pooling (memory-bound passes over 51 MB tensors, forward and
backward) took about half of a training step, more than all the convolutions' FLOPs. In
training mode a block therefore pools before its ReLU: ``max(relu(a), relu(b)) ==
relu(max(a, b))`` and the gradients are the same element for element, so the network
computes exactly the same function and learns exactly the same weights, with the ReLU (and
its backward pass) on an eighth of the voxels: 1.2x the training samples/s. In eval mode
the block keeps the original order, so a Grad-CAM hook on ``features.N.relu`` sees the
activation at the resolution it always had.

``stem_stride=2`` makes the first convolution stride 2 instead of pooling after it: the
first block, at full resolution the costliest (~55% of a step, mostly memory-bound norm,
ReLU and pooling), then works at 1/8 of the voxels. On the demo's 300 scans (one thread,
same seed) it ran an epoch in 10.5 s against 22 s and reached validation macro AUC 0.92 at
epoch 6 and 0.97 at epoch 9, where the unstrided network reached 0.93 at epoch 7. 3D
classification plans ask for it (``model_kwargs``); it is recorded in every run's contract,
so a run's weights always load into the network they were trained in.

``dropout`` is the head's dropout before the last layer (0.3 by default, the original
recipe's). 3D CT plans ask for 0: on the demo's scans (same split, 25 epochs, 3 seeds) the
head without dropout separated benign from normal cases better at the same cost, the class
the short training schedules of slow CPUs learn last; see `medsight.imaging.preprocess.plan`.
Dropout has no weights, so a run trained with either setting loads into either network.
"""

from __future__ import annotations

import torch
from torch import nn

from medsight.imaging.models.registry import register_model


class ConvBlock(nn.Module):
    """conv -> (norm) -> ReLU -> max-pool(2); pools before the ReLU in training mode.

    The children keep the names (``conv``, ``norm``, ``relu``, ``pool``) and parameter keys
    of the ``nn.Sequential`` block this replaced, so saved weights load unchanged and
    Grad-CAM layer paths such as ``features.3.relu`` still exist.
    """

    def __init__(self, conv: nn.Module, norm: nn.Module | None, pool: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm if norm is not None else nn.Identity()  # no parameters: same keys
        # not in-place, so hooks on it see the activation, not a tensor later overwritten
        self.relu = nn.ReLU()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.training:
            return self.relu(self.pool(x))  # same values and gradients, 1/8 of the ReLU work
        return self.pool(self.relu(x))


class LungCTCNN(nn.Module):
    """Five conv blocks and a two-layer head."""

    cam_layer = "features.3.relu"  # second-to-last block: finer than the last, still semantic

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        spatial_dims: int = 3,
        channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        hidden: int = 64,
        dropout: float = 0.3,
        batch_norm: bool = True,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        norm = nn.BatchNorm3d if spatial_dims == 3 else nn.BatchNorm2d
        pool = nn.MaxPool3d if spatial_dims == 3 else nn.MaxPool2d
        global_pool = nn.AdaptiveMaxPool3d(1) if spatial_dims == 3 else nn.AdaptiveMaxPool2d(1)
        blocks = []
        prev = in_channels
        for level, width in enumerate(channels):
            # named children give readable Grad-CAM layer paths; a strided stem convolves at
            # stride 2 instead of pooling after the first block (the same output size)
            stride = stem_stride if level == 0 else 1
            blocks.append(
                ConvBlock(
                    conv(prev, width, 3, stride=stride, padding=1),
                    norm(width) if batch_norm else None,
                    pool(2) if stride == 1 else nn.Identity(),
                )
            )
            prev = width
        self.features = nn.Sequential(*blocks)
        self.cam_layer = f"features.{max(0, len(blocks) - 2)}.relu"
        self.head = nn.Sequential(
            global_pool,
            nn.Flatten(),
            nn.Linear(prev, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("lungct-cnn")
def lungct_cnn(
    in_channels: int = 1,
    num_classes: int = 3,
    spatial_dims: int = 3,
    depth: int = 5,
    stem_stride: int = 1,
    dropout: float = 0.3,
) -> nn.Module:
    """The founding example's CNN; ``depth`` < 5 drops the widest blocks (small inputs);
    ``stem_stride=2``: the first convolution strided instead of pooled (what 3D plans use);
    ``dropout``: the head's (3D CT plans use 0)."""
    if not 1 <= depth <= 5:
        raise ValueError(f"depth must be 1..5, got {depth}")
    return LungCTCNN(
        in_channels,
        num_classes,
        spatial_dims,
        channels=(16, 32, 64, 128, 256)[:depth],
        dropout=dropout,
        stem_stride=stem_stride,
    )
