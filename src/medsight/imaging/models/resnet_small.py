"""`resnet18-small`: ResNet-18 for small images (MedMNIST's 28x28 / 64x64, 28^3 volumes).

The standard stem (7-wide convolution, stride 2, then a stride-2 max-pool) shrinks a 28x28
image to 7x7 before the first residual stage and to 1x1 at the last. This preset follows
the MedMNIST benchmark's ResNet (after the CIFAR ResNets): a 3-wide stem convolution with
stride 1 and no max-pool, so the stages see 28, 14, 7 and 4 pixels a side. Weights have the
same names as `resnet18`'s except the stem kernel, so a `resnet18` backbone transfers with
``strict_backbone=False`` (the stem stays freshly initialised).

Its cost grows with the full input resolution: meant for inputs up to about 64 a side.
"""

from __future__ import annotations

from monai.networks import nets
from torch import nn

from medsight.imaging.models.registry import register_model
from medsight.imaging.models.resnet import monai_resnet


@register_model("resnet18-small")
def resnet18_small(in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> nn.Module:
    """ResNet-18 with a 3-wide stride-1 stem and no max-pool, randomly initialised."""
    return monai_resnet(
        nets.resnet18,
        in_channels,
        num_classes,
        spatial_dims,
        conv1_t_size=3,
        conv1_t_stride=1,
        no_max_pool=True,
    )
