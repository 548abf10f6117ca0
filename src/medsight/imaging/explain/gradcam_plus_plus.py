"""Grad-CAM++ heatmaps of 2D and 3D classifiers (Chattopadhyay et al., 2018), via MONAI.

Grad-CAM weighs each channel of the target layer by its mean gradient; Grad-CAM++ weighs
only the positive gradients, each by a per-position coefficient from second and third
order terms, so that several separate regions of evidence (two nodules) each light up
instead of the strongest alone. ``monai.visualize.GradCAMpp`` computes it; it shares
Grad-CAM's side effects and runner (`class_activation_map`), which also keeps MONAI's
``exp(score)`` factor from overflowing.

Arrays: ``x`` is ``(1, C, H, W)`` or ``(1, C, D, H, W)``; maps are float32 ``[y, x]`` or
``[z, y, x]`` at the input's resolution, in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.visualize import GradCAMpp
from torch import nn

from medsight.imaging.explain.class_activation import class_activation_map


def gradcam_plus_plus(
    model: nn.Module, x: torch.Tensor, class_index: int, target_layer: str
) -> np.ndarray:
    """Grad-CAM++ heatmap of ``model`` for class ``class_index`` on one image or volume.

    Like `medsight.imaging.explain.gradcam.gradcam_volume`: eval mode, float32, gradients enabled
    even inside inference code, and the model left exactly as it was.

    Args:
        model: A classifier returning logits of shape ``(1, n_classes)``.
        x: Input image ``(1, C, H, W)`` or volume ``(1, C, D, H, W)``.
        class_index: Class whose score is explained (need not be the predicted class).
        target_layer: Name of the layer to explain, as in ``model.named_modules()``.

    Returns:
        Heatmap, float32, shape ``(H, W)`` or ``(D, H, W)``, values in ``[0, 1]``; all
        zeros when no activation of the target layer raises the class score.

    Raises:
        ValueError: If ``x`` is not a single 4-D or 5-D input, ``class_index`` is not a
            class of the model's output or ``target_layer`` is not a module of ``model``.
    """
    return class_activation_map(model, x, class_index, target_layer, GradCAMpp)
