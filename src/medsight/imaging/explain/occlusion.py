"""Occlusion sensitivity of 2D and 3D classifiers (Zeiler & Fergus, 2014), via MONAI.

A patch slides over the input; wherever hiding it lowers the score of the explained class,
that region mattered. The map is that drop, ``logit(class | x) - logit(class | x with the
patch hidden)``, blended over the patches covering each voxel and divided by its maximum,
so 0 still means "hiding it changed nothing"; negative values (hiding helped the class)
become 0. Unlike Grad-CAM it needs no gradients and no layer name, and it treats the model
as a black box, at the price of one forward pass per patch position.

The score is the class logit (what Grad-CAM explains too), not its probability: the
probability of a confident model saturates at 1, so hiding half of the evidence changes it
by 1e-6 or not at all in float32 (a tiny CNN trained on bright cubes gave an all-zero
probability map and a clear logit map); log-probabilities saturate at 0 the same way.

``monai.visualize.OcclusionSensitivity`` does the sliding (it runs MONAI's sliding-window
inferer over a grid of patch positions, blending overlapping patches). The patch is
``mask_size`` voxels (by default a quarter of the input along each axis) and moves by
``mask_size * (1 - overlap)``, so with the defaults ~7 positions per axis: 343 forward
passes for any 3D input, ~49 for 2D. Three of its defaults are replaced:

* its ``activate=True`` turns logits into probabilities (and picks sigmoid or softmax by
  the number of *input* channels, so a one-channel CT scan would get sigmoids of
  multi-class logits); logits are kept instead (``activate=False``), see above;
* it shows a progress bar (``verbose``), which is off here, and with torch >= 2.9 warns
  on every call that it indexes tensors with lists ("Using a non-tuple sequence for
  multidimensional indexing is deprecated"), a warning meant for MONAI's developers,
  silenced here (a future torch that makes it an error will fail the tests loudly);
* its ``eval_mode`` restores only the top-level train/eval mode, so the model runs inside
  `preserved_model_state`.

Hiding means: with ``fill_value=None`` (default) MONAI's "gaussian" occlusion, which
multiplies the patch by ``1 - gaussian`` (0 at its centre), i.e. fades it towards 0 - air
after the HU window, so hiding does nothing outside the lungs of a lung-masked input; with a
number, the patch is replaced by that value.

Arrays: ``x`` is ``(1, C, H, W)`` or ``(1, C, D, H, W)``; maps are float32 ``[y, x]`` or
``[z, y, x]`` at the input's resolution, in ``[0, 1]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.visualize import OcclusionSensitivity
from torch import nn

from medsight.imaging.explain.attribution_inputs import (
    check_class_index,
    model_device,
    spatial_dims_of,
)
from medsight.imaging.explain.heatmap_scaling import scaled_to_unit
from medsight.imaging.explain.model_state import preserved_model_state


def default_mask_size(spatial_shape: Sequence[int]) -> tuple[int, ...]:
    """A quarter of the input along each axis (at least one voxel).

    Args:
        spatial_shape: The input's spatial shape, ``(H, W)`` or ``(D, H, W)``.

    Returns:
        Patch size per axis.
    """
    return tuple(max(1, int(n) // 4) for n in spatial_shape)


def occlusion_map(
    model: nn.Module,
    x: torch.Tensor,
    class_index: int,
    mask_size: int | Sequence[int] | None = None,
    overlap: float = 0.5,
    fill_value: float | None = None,
    n_batch: int = 8,
) -> np.ndarray:
    """Occlusion-sensitivity map of ``model`` for class ``class_index`` on one input.

    Runs without gradients, in eval mode and float32; the model is left as it was.

    Args:
        model: A classifier returning logits of shape ``(batch, n_classes)``.
        x: Input image ``(1, C, H, W)`` or volume ``(1, C, D, H, W)``.
        class_index: Class whose logit is explained (need not be the predicted one).
        mask_size: Patch size, one number for every axis or one per axis; None for a quarter
            of the input per axis. Clipped to the input's size.
        overlap: Fraction of a patch that consecutive positions share, in ``[0, 1)``.
        fill_value: What a hidden patch shows; None fades it towards 0 with a gaussian
            (soft edges, fewer blocky artefacts).
        n_batch: Occluded copies of ``x`` per forward pass (memory vs. speed).

    Returns:
        Map, float32, shape ``(H, W)`` or ``(D, H, W)``, values in ``[0, 1]``; all zeros
        when hiding no patch lowers the class logit.

    Raises:
        ValueError: If ``x`` is not a single 4-D or 5-D input, ``class_index`` is not a
            class of the model's output, ``overlap`` is outside ``[0, 1)`` or ``mask_size``
            has the wrong length or a size below 1.
    """
    spatial_dims = spatial_dims_of(x)
    check_class_index(class_index)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    spatial_shape = tuple(int(n) for n in x.shape[2:])
    if mask_size is None:
        size = default_mask_size(spatial_shape)
    elif isinstance(mask_size, int):
        size = (mask_size,) * spatial_dims
    else:
        size = tuple(int(m) for m in mask_size)
    if len(size) != spatial_dims or min(size) < 1:
        raise ValueError(f"mask_size must be {spatial_dims} sizes >= 1, got {mask_size}")
    size = tuple(min(m, n) for m, n in zip(size, spatial_shape, strict=True))
    device = model_device(model, x)

    with (
        torch.no_grad(),
        torch.autocast(device_type=device.type, enabled=False),
        preserved_model_state(model),
    ):
        model.eval()
        image = x.detach().to(device=device, dtype=torch.float32)
        logits = model(image)
        if class_index >= logits.shape[1]:
            raise ValueError(f"class_index {class_index} is not a class of the model")
        occlusion = OcclusionSensitivity(
            nn_module=model,
            mask_size=size,
            n_batch=n_batch,
            verbose=False,
            mode="gaussian" if fill_value is None else float(fill_value),
            overlap=overlap,
            activate=False,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning)
            occluded, _ = occlusion(image)
        if isinstance(occluded, MetaTensor):
            occluded = occluded.as_tensor()
        # (1, n_classes, *spatial): the class logit with each region hidden
        drop = logits[0, class_index] - occluded[0, class_index]
    return scaled_to_unit(drop.float().cpu().numpy(), zero_at=0.0)
