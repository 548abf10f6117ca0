"""Segmentation networks: MONAI's U-Nets behind the registry, sized by the plan.

Every factory takes ``in_channels``, ``num_classes`` (output channels, background
included) and ``spatial_dims``, plus ``depth`` (resolution levels, from the plan) and
``base_filters`` (channels at full resolution, doubled per level). They return logits
``(N, num_classes, *spatial)``; spatial sizes must be divisible by ``2 ** (depth - 1)``.

* ``dynunet``: MONAI's DynUNet, the nnU-Net architecture (two 3-wide convolutions per
  level, instance norm, LeakyReLU, strided-convolution downsampling); ``deep_supervision=1``
  adds the lower-resolution heads nnU-Net trains with (training mode only).
* ``unet``: MONAI's UNet (residual units, strided convolutions from the first layer): much
  cheaper per voxel since nothing runs at full resolution but the last layer.
* ``basicunet``: MONAI's BasicUNet (fixed five levels).
"""

from __future__ import annotations

from monai.networks import nets
from torch import nn

from medsight.imaging.models.registry import register_model

#: nnU-Net caps the channels per level at 320 (3D)
MAX_FILTERS = 320


def level_filters(depth: int, base_filters: int) -> list[int]:
    """Channels per resolution level: ``base_filters`` doubled per level, capped."""
    return [min(base_filters * 2**level, MAX_FILTERS) for level in range(depth)]


@register_model("dynunet", task="segment")
def dynunet(
    in_channels: int = 1,
    num_classes: int = 2,
    spatial_dims: int = 3,
    depth: int = 4,
    base_filters: int = 16,
    deep_supervision: int = 0,
    z_levels: int = -1,
) -> nn.Module:
    """nnU-Net's architecture (MONAI DynUNet) with ``depth`` levels.

    ``z_levels`` (3D only) is how many of the ``depth - 1`` downsamplings also halve the
    first (slice) axis; -1 means all. nnU-Net stops pooling an axis that is short or
    coarse; ``z_levels=0`` with a patch one slice thick is a 2D network in 3D clothes
    (1x3x3 kernels), which is how 2D images are segmented.
    """
    if depth < 2:
        raise ValueError("dynunet needs depth >= 2")
    levels = depth - 1 if z_levels < 0 else min(z_levels, depth - 1)
    if spatial_dims == 3:
        strides: list = [1] + [(2 if i < levels else 1, 2, 2) for i in range(depth - 1)]
        kernels: list = [(3, 3, 3) if z_levels != 0 else (1, 3, 3)] * depth
    else:
        strides = [1] + [2] * (depth - 1)
        kernels = [3] * depth
    return nets.DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        kernel_size=kernels,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=level_filters(depth, base_filters),
        norm_name="instance",
        deep_supervision=bool(deep_supervision),
        deep_supr_num=max(1, min(2, depth - 2)),
        res_block=False,
    )


@register_model("unet", task="segment")
def unet(
    in_channels: int = 1,
    num_classes: int = 2,
    spatial_dims: int = 3,
    depth: int = 4,
    base_filters: int = 16,
) -> nn.Module:
    """MONAI UNet (one residual unit per level, instance norm) with ``depth`` levels."""
    if depth < 2:
        raise ValueError("unet needs depth >= 2")
    return nets.UNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        channels=level_filters(depth, base_filters),
        strides=[2] * (depth - 1),
        num_res_units=1,
        norm="instance",
    )


@register_model("basicunet", task="segment")
def basicunet(
    in_channels: int = 1,
    num_classes: int = 2,
    spatial_dims: int = 3,
    depth: int = 5,
    base_filters: int = 16,
) -> nn.Module:
    """MONAI BasicUNet (always five levels: ``depth`` must be 5)."""
    if depth != 5:
        raise ValueError("basicunet has exactly 5 levels (depth 5)")
    f = base_filters
    return nets.BasicUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        features=(f, f, 2 * f, 4 * f, 8 * f, f),
    )
