"""`resnet18`, `resnet50`: MONAI's ResNets behind the registry's features/head surface.

Inputs are ``(N, C, z, y, x)`` in 3D and ``(N, C, y, x)`` in 2D; outputs are logits.

The stem is the paper's (He et al. 2016): a 7-wide convolution with stride 2, then a
stride-2 max-pool. MONAI's constructor defaults to stride 1, which quadruples (2D) or
octuples (3D) the cost of every later layer for no benefit on CT-sized inputs; stride 2 is
also what MedicalNet (Med3D), the usual source of 3D ResNet weights, was trained with.
Shortcuts are 1x1 convolutions + batch norm ("B") without the redundant bias before the
norm, so a ResNet-50 has exactly MedicalNet's tensor names and shapes (ResNet-18/34 in
MedicalNet use parameter-free "A" shortcuts, whose MONAI version cuts the gradient of the
shortcut path with ``.data``; we do not copy that).

``forward_features`` runs everything up to the global pool (the output of ``layer4``);
``forward_head`` is global average pooling + the linear classifier ``fc``. Grad-CAM hooks
``net.layer4`` as a whole: the ReLU module inside a residual block is called twice per
forward pass, so hooking it would pair the activation of one call with the gradient of the
other.
"""

from __future__ import annotations

from typing import Any

from monai.networks import nets
from monai.networks.nets.resnet import ResNet
from torch import Tensor, nn

from medsight.imaging.models.registry import register_model


class ResNetClassifier(nn.Module):
    """A MONAI ``ResNet`` split into ``forward_features`` (stem + 4 stages) and the head.

    Args:
        net: A MONAI ResNet built with ``feed_forward=True`` (it must own ``fc``).
    """

    cam_layer = "net.layer4"
    head_layer = "net.fc"

    def __init__(self, net: ResNet) -> None:
        super().__init__()
        if net.fc is None:
            raise ValueError("the ResNet must be built with feed_forward=True (it has no fc)")
        self.net = net

    def forward_features(self, x: Tensor) -> Tensor:
        net = self.net
        x = net.act(net.bn1(net.conv1(x)))
        if not net.no_max_pool:
            x = net.maxpool(x)
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))

    def forward_head(self, features: Tensor) -> Tensor:
        assert self.net.fc is not None  # checked in __init__; narrows the type
        return self.net.fc(self.net.avgpool(features).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def monai_resnet(
    builder: Any, in_channels: int, num_classes: int, spatial_dims: int, **extra: Any
) -> nn.Module:
    """Wrap ``builder`` (a ``monai.networks.nets.resnet*`` function) with the shared settings."""
    net = builder(
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        num_classes=num_classes,
        bias_downsample=False,
        **{"conv1_t_stride": 2, **extra},
    )
    return ResNetClassifier(net)


@register_model("resnet18")
def resnet18(in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> nn.Module:
    """ResNet-18 (basic blocks 2-2-2-2, 512 features), randomly initialised."""
    return monai_resnet(nets.resnet18, in_channels, num_classes, spatial_dims)


@register_model("resnet50")
def resnet50(in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> nn.Module:
    """ResNet-50 (bottleneck blocks 3-4-6-3, 2048 features), randomly initialised."""
    return monai_resnet(nets.resnet50, in_channels, num_classes, spatial_dims)
