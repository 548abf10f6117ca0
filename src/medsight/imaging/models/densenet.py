"""`densenet121`: MONAI's DenseNet-121 behind the registry's features/head surface."""

from __future__ import annotations

import torch
from monai.networks.nets import DenseNet121
from torch import nn

from medsight.imaging.models.registry import register_model


class DenseNetClassifier(nn.Module):
    """MONAI DenseNet-121 split into ``features`` and ``head`` (its ``class_layers``)."""

    cam_layer = "net.features.norm5"
    head_layer = "net.class_layers"

    def __init__(self, in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> None:
        super().__init__()
        self.net = DenseNet121(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.class_layers(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("densenet121")
def densenet121(in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> nn.Module:
    """MONAI DenseNet-121 (2D or 3D), randomly initialised."""
    return DenseNetClassifier(in_channels, num_classes, spatial_dims)
