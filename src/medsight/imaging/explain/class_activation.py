"""Class activation maps (Grad-CAM, Grad-CAM++) of 2D and 3D classifiers, via MONAI.

Arrays: the input ``x`` is one image ``(1, C, H, W)`` or one volume ``(1, C, D, H, W)``;
maps are float32 numpy arrays indexed ``[y, x]`` or ``[z, y, x]`` at the input's
resolution, scaled to ``[0, 1]`` (1 = the most attended voxel). A target layer is named as
in ``model.named_modules()``, e.g. ``"features.3.relu"``; a layer late in the feature
extractor gives the most class-specific map, an earlier one a finer but less specific map.

MONAI's classes run inside `preserved_model_state`, which undoes their side effects on the
model (hooks, ``inplace`` flags, gradients, train/eval modes). Two more of their defaults
are replaced here:

* the default post-processing maps the map's maximum to 0 and its minimum to 1 (inverted);
  maps are scaled with `scaled_to_unit` instead;
* Grad-CAM++ multiplies the gradients by ``exp(class score)``, which overflows float32 for
  a logit above ~88 and turns the map into NaN/inf. For one input that factor is a positive
  constant, which the scaling to ``[0, 1]`` removes anyway, so the score handed to MONAI is
  the logit minus its own (detached) value: zero, with the logit's gradient.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.visualize import GradCAM
from monai.visualize.class_activation_maps import ModelWithHooks
from torch import nn

from medsight.imaging.explain.attribution_inputs import (
    check_class_index,
    model_device,
    spatial_dims_of,
    target_module,
)
from medsight.imaging.explain.heatmap_scaling import scaled_to_unit
from medsight.imaging.explain.model_state import preserved_model_state


def _unchanged(cam: torch.Tensor) -> torch.Tensor:
    # Replaces MONAI's default normaliser, which inverts the map; scaling is done after.
    return cam


class _ZeroedScoreHooks(ModelWithHooks):
    """MONAI's hooked model, with the class score shifted to 0 (same gradient)."""

    def class_score(self, logits: torch.Tensor, class_idx: int) -> torch.Tensor:
        score = logits[:, class_idx].squeeze()
        return score - score.detach()


def class_activation_map(
    model: nn.Module,
    x: torch.Tensor,
    class_index: int,
    target_layer: str,
    cam_type: type[GradCAM] = GradCAM,
) -> np.ndarray:
    """Class activation map of ``model`` for class ``class_index`` on one image or volume.

    The model runs in eval mode and float32 with autocast disabled, under
    ``torch.enable_grad()`` so it may be called from inference code (``no_grad`` or
    ``inference_mode``). Afterwards the model is exactly as before: no hooks left, every
    module back in its train/eval mode, ``inplace`` flags and parameter ``.grad`` restored.
    The model's parameters must be float32; ``x`` is moved to their device.

    Args:
        model: A classifier returning logits of shape ``(1, n_classes)``.
        x: Input image ``(1, C, H, W)`` or volume ``(1, C, D, H, W)``.
        class_index: Class whose score is explained (need not be the predicted class).
        target_layer: Name of the layer to explain, as in ``model.named_modules()``.
        cam_type: ``monai.visualize.GradCAM`` or its subclass ``GradCAMpp``.

    Returns:
        Map, float32, shape ``(H, W)`` or ``(D, H, W)``, values in ``[0, 1]``; all zeros
        when no activation of the target layer raises the class score.

    Raises:
        ValueError: If ``x`` is not a single 4-D or 5-D input, ``class_index`` is not a
            class of the model's output or ``target_layer`` is not a module of ``model``.
    """
    spatial_dims_of(x)
    check_class_index(class_index)
    target = target_module(model, target_layer)
    device = model_device(model, x)

    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast(device_type=device.type, enabled=False),
        preserved_model_state(model, hooked=target),
    ):
        # A fresh leaf that needs grad makes the backward hook fire even on a frozen model.
        image = x.detach().to(device=device, dtype=torch.float32).clone().requires_grad_(True)
        hooks = _ZeroedScoreHooks(
            model, target_layer, register_forward=True, register_backward=True
        )
        # CAMBase takes a ready ModelWithHooks too (it checks isinstance); its annotation
        # names nn.Module only
        cam = cam_type(
            nn_module=hooks,  # type: ignore[arg-type]
            target_layers=target_layer,
            postprocessing=_unchanged,
        )
        try:
            raw = cam(image, class_idx=class_index)
        except IndexError as error:
            raise ValueError(f"class_index {class_index} is not a class of the model") from error
    return scaled_to_unit(raw.detach().float().cpu().numpy()[0, 0])
