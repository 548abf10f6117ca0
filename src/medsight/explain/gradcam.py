"""Grad-CAM heatmaps of 3D classifiers, computed with MONAI and left without side effects.

Arrays: the input ``x`` is a ``(1, 1, D, H, W)`` float tensor; heatmaps are float32 numpy
arrays indexed ``[z, y, x]`` at the input's resolution, scaled to ``[0, 1]`` (1 = the most
attended voxel). A target layer is named as in ``model.named_modules()``, e.g.
``"features.4"``; a layer late in the feature extractor (last activation of the last
convolutional block) gives the most class-specific map.

``monai.visualize.GradCAM`` (1.6.1) has side effects that this module undoes:

* it registers a forward and a full backward hook on the target layer and never removes
  them, so they would fire (and hold activations) on every later forward pass;
* a full backward hook makes any *in-place* op on the target's output fail with
  ``RuntimeError: Output 0 of BackwardHookFunction is a view and is being modified
  inplace`` (e.g. a ``Conv3d`` target followed by ``ReLU(inplace=True)``), during Grad-CAM
  and in all later training while the hook stays registered;
* it sets ``inplace=False`` on the target module for good, calls ``model.zero_grad()``
  (discarding accumulated gradients) and leaves ``model.train()`` / ``eval()`` mode
  restored only at the top level;
* its default post-processing maps the map's maximum to 0 and its minimum to 1 (inverted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn


def _unchanged(cam: torch.Tensor) -> torch.Tensor:
    # Replaces MONAI's default normaliser, which inverts the map; scaling is done after.
    return cam


@contextmanager
def _model_state_preserved(model: nn.Module, target: nn.Module) -> Iterator[None]:
    """Undo everything Grad-CAM changes on ``model`` when the block exits, even on error."""
    training = {module: module.training for module in model.modules()}
    grads = {param: param.grad for param in model.parameters()}
    forward_hooks = set(target._forward_hooks)
    backward_hooks = set(target._backward_hooks)
    full_backward_flag = target._is_full_backward_hook
    # In-place ops on the hooked output break the backward hook; run out-of-place instead.
    # ``inplace`` is a plain attribute of ReLU, Dropout, ... (set it as MONAI does).
    inplace_modules = [m for m in model.modules() if m.__dict__.get("inplace") is True]
    for module in inplace_modules:
        module.__dict__["inplace"] = False
    try:
        yield
    finally:
        for key in set(target._forward_hooks) - forward_hooks:
            del target._forward_hooks[key]
            target._forward_hooks_with_kwargs.pop(key, None)
            target._forward_hooks_always_called.pop(key, None)
        for key in set(target._backward_hooks) - backward_hooks:
            del target._backward_hooks[key]
        target._is_full_backward_hook = full_backward_flag
        for module in inplace_modules:
            module.__dict__["inplace"] = True
        for module, was_training in training.items():
            module.training = was_training
        for param, grad in grads.items():
            param.grad = grad


def gradcam_volume(
    model: nn.Module, x: torch.Tensor, class_index: int, target_layer: str
) -> np.ndarray:
    """Grad-CAM heatmap of ``model`` for class ``class_index`` on one volume.

    The model runs in eval mode and float32 with autocast disabled, under
    ``torch.enable_grad()`` so it may be called from inference code (``no_grad`` or
    ``inference_mode``). Afterwards the model is exactly as before: no hooks left, every
    module back in its train/eval mode, ``inplace`` flags and parameter ``.grad`` restored.
    The model's parameters must be float32 and on the same device as ``x`` is moved to.

    Args:
        model: A classifier returning logits of shape ``(1, n_classes)``.
        x: Input volume, shape ``(1, 1, D, H, W)``, values in ``[0, 1]``.
        class_index: Class whose score is explained (need not be the predicted class).
        target_layer: Name of the layer to explain, as in ``model.named_modules()``.

    Returns:
        Heatmap, float32, shape ``(D, H, W)``, values in ``[0, 1]``; all zeros when no
        activation of the target layer raises the class score.

    Raises:
        ValueError: If ``x`` is not a single 5-D volume, ``class_index`` is not a class of
            the model's output or ``target_layer`` is not a module of ``model`` (MONAI would
            only warn and then fail with an unrelated ``KeyError``).
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ValueError(f"x must have shape (1, C, D, H, W), got {tuple(x.shape)}")
    if class_index < 0:
        raise ValueError(f"class_index must be >= 0, got {class_index}")
    modules = dict(model.named_modules())
    if target_layer not in modules or target_layer == "":
        convs = [name for name, m in modules.items() if isinstance(m, nn.Conv3d | nn.ReLU)]
        raise ValueError(
            f"target_layer {target_layer!r} is not a module of the model; "
            f"convolution/activation layers are: {convs}"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device

    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast(device_type=device.type, enabled=False),
        _model_state_preserved(model, modules[target_layer]),
    ):
        # A fresh leaf that needs grad makes the backward hook fire even on a frozen model.
        volume = x.detach().to(device=device, dtype=torch.float32).clone().requires_grad_(True)
        cam = GradCAM(nn_module=model, target_layers=target_layer, postprocessing=_unchanged)
        try:
            heat = cam(volume, class_idx=class_index)
        except IndexError as error:
            raise ValueError(f"class_index {class_index} is not a class of the model") from error

    heatmap = heat.detach().float().cpu().numpy()[0, 0]
    heatmap = np.nan_to_num(heatmap, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(heatmap.min()), float(heatmap.max())
    if high - low <= 1e-12:
        return np.zeros(heatmap.shape, dtype=np.float32)
    return ((heatmap - low) / (high - low)).astype(np.float32)


def top_slice(heatmap: np.ndarray) -> int:
    """Index of the z-slice with the largest summed attribution.

    Args:
        heatmap: Heatmap indexed ``[z, y, x]``.

    Returns:
        The z index; the first such slice on ties (0 for an all-zero heatmap).

    Raises:
        ValueError: If ``heatmap`` is not 3-D or has no slices.
    """
    if heatmap.ndim != 3 or heatmap.shape[0] == 0:
        raise ValueError(f"heatmap must be a non-empty [z, y, x] array, got {heatmap.shape}")
    return int(np.argmax(heatmap.sum(axis=(1, 2))))
