"""`lungct-cnn`: the founding example's 3D CNN for lung-CT classification.

Five blocks of conv(3x3x3) + ReLU + max-pool(2) widening 16 -> 256 channels, then global
max pooling (a nodule can be anywhere: the strongest local response is what matters) and
two fully connected layers to the class logits.

One addition to the original recipe: batch normalisation after each convolution
(``batch_norm=True``, the default). Trained from scratch on a few hundred CT volumes, the
plain conv+ReLU stack sat at chance for several epochs on the demo budget; with BN it starts
learning in the first epochs. ``batch_norm=False`` gives the original block.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from medsight.imaging.models.registry import register_model


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
    ) -> None:
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        norm = nn.BatchNorm3d if spatial_dims == 3 else nn.BatchNorm2d
        pool = nn.MaxPool3d if spatial_dims == 3 else nn.MaxPool2d
        global_pool = nn.AdaptiveMaxPool3d(1) if spatial_dims == 3 else nn.AdaptiveMaxPool2d(1)
        blocks = []
        prev = in_channels
        for width in channels:
            # named children give readable Grad-CAM layer paths; ReLU is not in-place so
            # hooks on it see the activation, not a tensor later overwritten
            layers: OrderedDict[str, nn.Module] = OrderedDict(conv=conv(prev, width, 3, padding=1))
            if batch_norm:
                layers["norm"] = norm(width)
            layers.update(relu=nn.ReLU(), pool=pool(2))
            blocks.append(nn.Sequential(layers))
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
    in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3, depth: int = 5
) -> nn.Module:
    """The founding example's CNN; ``depth`` < 5 drops the widest blocks (small inputs)."""
    if not 1 <= depth <= 5:
        raise ValueError(f"depth must be 1..5, got {depth}")
    return LungCTCNN(
        in_channels, num_classes, spatial_dims, channels=(16, 32, 64, 128, 256)[:depth]
    )
