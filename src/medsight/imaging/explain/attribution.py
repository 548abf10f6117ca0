"""One entry point for every attribution method medsight offers, chosen by name.

``gradcam`` (Selvaraju et al., 2017) and ``gradcampp`` (Chattopadhyay et al., 2018) read a
layer's activations and gradients: fast (one forward and one backward pass), coarse (the
layer's resolution). ``occlusion`` hides patches and watches the class score: slow
(hundreds of forward passes), model-agnostic, no layer name needed.

Arrays: ``x`` is ``(1, C, H, W)`` or ``(1, C, D, H, W)``; maps are float32 ``[y, x]`` or
``[z, y, x]`` at the input's resolution, in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsight.imaging.explain.gradcam import gradcam_volume
from medsight.imaging.explain.gradcam_plus_plus import gradcam_plus_plus
from medsight.imaging.explain.occlusion import occlusion_map

METHODS = ("gradcam", "gradcampp", "occlusion")


def attribution_map(
    model: nn.Module,
    x: torch.Tensor,
    class_index: int,
    method: str,
    target_layer: str | None = None,
) -> np.ndarray:
    """The ``method`` map of ``model`` for class ``class_index`` on one image or volume.

    Args:
        model: A classifier returning logits ``(1, n_classes)``.
        x: Input image ``(1, C, H, W)`` or volume ``(1, C, D, H, W)``.
        class_index: Class whose score is explained.
        method: One of `METHODS`.
        target_layer: Layer for the Grad-CAM methods, as in ``model.named_modules()``;
            None uses the model's ``cam_layer`` (every registered model names one).
            Occlusion ignores it.

    Returns:
        Map, float32, the input's spatial shape, values in ``[0, 1]``.

    Raises:
        ValueError: If ``method`` is unknown, a Grad-CAM method has no layer to hook (none
            given and the model names no ``cam_layer``), or the method rejects its
            arguments (see `gradcam_volume`, `gradcam_plus_plus`, `occlusion_map`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "occlusion":
        return occlusion_map(model, x, class_index)
    layer = target_layer if target_layer is not None else getattr(model, "cam_layer", None)
    if not isinstance(layer, str):
        raise ValueError(f"{method} needs a target_layer; the model names no cam_layer")
    if method == "gradcam":
        return gradcam_volume(model, x, class_index, layer)
    return gradcam_plus_plus(model, x, class_index, layer)
