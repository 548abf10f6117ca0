"""Checks on what an attribution method is given: the input tensor, the class, the layer.

MONAI's explanation classes accept a wrong layer name or class with a warning and then fail
with an unrelated ``KeyError`` or ``IndexError``; these checks fail first, with a message
that says what to pass instead.

Arrays: ``x`` is one image, ``(1, C, H, W)``, or one volume, ``(1, C, D, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn


def spatial_dims_of(x: torch.Tensor) -> int:
    """Number of spatial axes of a single image (2) or volume (3).

    Args:
        x: The model input.

    Returns:
        2 or 3.

    Raises:
        ValueError: If ``x`` is not one 4-D image or one 5-D volume (a batch of several
            would mix their explanations).
    """
    if x.ndim not in (4, 5) or x.shape[0] != 1:
        raise ValueError(
            "x must have shape (1, C, D, H, W) for a volume or (1, C, H, W) for an image, "
            f"got {tuple(x.shape)}"
        )
    return x.ndim - 2


def check_class_index(class_index: int) -> None:
    """Reject a negative class index (torch would silently count it from the end).

    Raises:
        ValueError: If ``class_index`` is negative.
    """
    if class_index < 0:
        raise ValueError(f"class_index must be >= 0, got {class_index}")


def target_module(model: nn.Module, target_layer: str) -> nn.Module:
    """The module named ``target_layer`` in ``model.named_modules()``.

    Raises:
        ValueError: If no module has that name (the message lists the convolution and
            activation layers, the usual targets).
    """
    modules = dict(model.named_modules())
    if target_layer == "" or target_layer not in modules:
        candidates = [
            name
            for name, module in modules.items()
            if isinstance(module, nn.Conv2d | nn.Conv3d | nn.ReLU)
        ]
        raise ValueError(
            f"target_layer {target_layer!r} is not a module of the model; "
            f"convolution/activation layers are: {candidates}"
        )
    return modules[target_layer]


def model_device(model: nn.Module, x: torch.Tensor) -> torch.device:
    """The device of the model's parameters (``x``'s device for a parameter-free model)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else x.device
