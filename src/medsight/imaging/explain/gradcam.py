"""Grad-CAM heatmaps of 2D and 3D classifiers, computed with MONAI and left without side effects.

Arrays: the input ``x`` is a ``(1, 1, D, H, W)`` float tensor (or ``(1, C, H, W)`` for a 2D
model); heatmaps are float32 numpy arrays indexed ``[z, y, x]`` (``[y, x]``) at the input's
resolution, scaled to ``[0, 1]`` (1 = the most attended voxel). A target layer is named as
in ``model.named_modules()``, e.g. ``"features.4"``; a layer late in the feature extractor
(last activation of the last convolutional block) gives the most class-specific map.

``monai.visualize.GradCAM`` (1.6.1) leaves hooks, ``inplace`` flags, cleared gradients and
changed train/eval modes behind, and its default post-processing inverts the map; the
shared runner `class_activation_map` undoes and replaces all of that (see
`medsight.imaging.explain.model_state` and `medsight.imaging.explain.class_activation`).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn

from medsight.imaging.explain.class_activation import class_activation_map


def gradcam_volume(
    model: nn.Module, x: torch.Tensor, class_index: int, target_layer: str
) -> np.ndarray:
    """Grad-CAM heatmap of ``model`` for class ``class_index`` on one volume (or image).

    The model runs in eval mode and float32 with autocast disabled, under
    ``torch.enable_grad()`` so it may be called from inference code (``no_grad`` or
    ``inference_mode``). Afterwards the model is exactly as before: no hooks left, every
    module back in its train/eval mode, ``inplace`` flags and parameter ``.grad`` restored.
    The model's parameters must be float32 and on the same device as ``x`` is moved to.

    Args:
        model: A classifier returning logits of shape ``(1, n_classes)``.
        x: Input volume, shape ``(1, 1, D, H, W)``, values in ``[0, 1]``; a 2D model takes
            an image ``(1, C, H, W)``.
        class_index: Class whose score is explained (need not be the predicted class).
        target_layer: Name of the layer to explain, as in ``model.named_modules()``.

    Returns:
        Heatmap, float32, shape ``(D, H, W)`` (``(H, W)`` for an image), values in
        ``[0, 1]``; all zeros when no activation of the target layer raises the class score.

    Raises:
        ValueError: If ``x`` is not a single 5-D volume or 4-D image, ``class_index`` is not
            a class of the model's output or ``target_layer`` is not a module of ``model``
            (MONAI would only warn and then fail with an unrelated ``KeyError``).
    """
    return class_activation_map(model, x, class_index, target_layer, GradCAM)


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
