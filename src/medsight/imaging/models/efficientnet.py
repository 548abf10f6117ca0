"""`efficientnet-b0`: MONAI's EfficientNet-B0 behind the registry's features/head surface.

Inputs are ``(N, C, z, y, x)`` in 3D and ``(N, C, y, x)`` in 2D; outputs are logits.
Weights are randomly initialised: MONAI's ImageNet weights are a download (impossible here)
and 2D-only; bring weights as safetensors through `medsight.imaging.models.transfer`.

Two departures from ``EfficientNetBN``'s own forward pass, both numerically the same:

* MONAI's default "memory-efficient" swish is a custom autograd function that the ONNX
  exporter cannot translate; the plain ``x * sigmoid(x)`` is used everywhere instead.
* MONAI applies one shared swish module after the stem *and* after the 1x1 head
  convolution, so hooking it would mix two layers. The last activation is a module of its
  own, ``feature_act``: its output is what ``forward_features`` returns and what Grad-CAM
  explains (1280 channels at 1/32 of the input size).

``forward_head`` is global average pooling, dropout and the linear classifier ``net._fc``.
"""

from __future__ import annotations

from monai.networks.nets import EfficientNetBN
from torch import Tensor, nn

from medsight.imaging.models.registry import register_model


class EfficientNetClassifier(nn.Module):
    """MONAI ``EfficientNetBN`` split into ``forward_features`` and ``forward_head``.

    Args:
        in_channels: Input channels.
        num_classes: Number of output logits.
        spatial_dims: 2 or 3.
        variant: MONAI's model name, ``"efficientnet-b0"`` ... ``"efficientnet-b7"``.
    """

    cam_layer = "feature_act"
    head_layer = "net._fc"

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        spatial_dims: int = 3,
        variant: str = "efficientnet-b0",
    ) -> None:
        super().__init__()
        self.net = EfficientNetBN(
            variant,
            pretrained=False,
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
        )
        self.net.set_swish(memory_efficient=False)
        self.feature_act = nn.SiLU()

    def forward_features(self, x: Tensor) -> Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(net._conv_stem_padding(x))))
        x = net._blocks(x)
        return self.feature_act(net._bn1(net._conv_head(net._conv_head_padding(x))))

    def forward_head(self, features: Tensor) -> Tensor:
        net = self.net
        return net._fc(net._dropout(net._avg_pooling(features).flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("efficientnet-b0")
def efficientnet_b0(in_channels: int = 1, num_classes: int = 3, spatial_dims: int = 3) -> nn.Module:
    """EfficientNet-B0 (2D or 3D), randomly initialised."""
    return EfficientNetClassifier(in_channels, num_classes, spatial_dims, "efficientnet-b0")
