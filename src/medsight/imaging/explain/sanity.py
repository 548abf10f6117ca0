"""The model-randomisation sanity check for saliency maps (Adebayo et al., 2018).

An explanation that stays the same when the model's weights are replaced by random ones
explains the input (edges, bright spots), not the model. The check compares the map of
the trained model with the map of the same architecture after *full* randomisation:
every parameter re-drawn from its layer's initialiser (``reset_parameters()``, which also
resets BatchNorm statistics), the end point of Adebayo et al.'s cascading randomisation
(which re-draws layer after layer from the top and plots the similarity at each step). One
end point gives a yes/no answer without choosing where the cascade should be judged; the
per-layer curve is a diagnostic for when the check fails. Parameters owned by no module
with ``reset_parameters()`` are re-drawn from a normal distribution with their trained
mean and standard deviation.

Similarity is Spearman's rank correlation over all voxels (``scipy.stats.spearmanr``),
the measure of the paper. The check passes when ``|rho| < 0.5`` (the default
``threshold``). The paper sets no threshold: in its figures the maps of methods that pass
(gradients, Grad-CAM) lose most of their rank correlation once the weights are random,
while those that fail (guided backpropagation) stay close to their trained maps. 0.5 is
medsight's choice, halfway between "unrelated" (0) and "same ranking" (1): a map that keeps
more than half its ranking under random weights is mostly explaining the input.

Arrays: ``x`` is ``(1, C, H, W)`` or ``(1, C, D, H, W)``.
"""

from __future__ import annotations

import copy
import math
from typing import TypedDict

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from medsight.imaging.explain.attribution import attribution_map

DEFAULT_THRESHOLD = 0.5


class RandomisationResult(TypedDict):
    """Outcome of `randomisation_check`."""

    #: Spearman's rho between the trained and the randomised model's maps; NaN when the
    #: trained model's map is constant (nothing to rank)
    spearman: float
    #: ``|rho| < threshold``: the map depends on what the model learned
    passed: bool


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every parameter re-drawn at random.

    The global torch random state is left untouched.

    Args:
        model: The trained model (unchanged).
        seed: Seed of the re-drawn weights.

    Returns:
        The randomised copy, in the same train/eval mode and on the same device.
    """
    clone = copy.deepcopy(model)
    reset: set[int] = set()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in clone.modules():
            reset_parameters = getattr(module, "reset_parameters", None)
            if callable(reset_parameters):
                reset_parameters()
                reset.update(id(p) for p in module.parameters(recurse=False))
        for param in clone.parameters():
            if id(param) not in reset:
                std = float(param.float().std()) if param.numel() > 1 else 0.0
                param.normal_(float(param.float().mean()), std if math.isfinite(std) else 0.0)
    return clone


def randomisation_check(
    model: nn.Module,
    x: torch.Tensor,
    class_index: int,
    target_layer: str | None,
    method: str = "gradcam",
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
) -> RandomisationResult:
    """Whether ``method``'s map of ``model`` changes when the weights are randomised.

    Args:
        model: The trained classifier (left unchanged).
        x: One input, ``(1, C, H, W)`` or ``(1, C, D, H, W)``.
        class_index: Class whose map is compared.
        target_layer: Layer for the Grad-CAM methods (None: the model's ``cam_layer``).
        method: A name in `medsight.imaging.explain.attribution.METHODS`.
        threshold: The check passes when ``|rho|`` is below it.
        seed: Seed of the random weights.

    Returns:
        ``{"spearman": rho, "passed": |rho| < threshold}``. When the randomised model's map
        is constant (it attributes nothing) while the trained one's is not, the maps share
        no ranking: rho is 0 and the check passes. When the trained model's map is constant
        there is nothing to check: rho is NaN and the check fails.

    Raises:
        ValueError: If the method rejects its arguments (see `attribution_map`).
    """
    trained = attribution_map(model, x, class_index, method, target_layer)
    randomised = attribution_map(randomised_copy(model, seed), x, class_index, method, target_layer)
    if np.ptp(trained) == 0:
        return {"spearman": math.nan, "passed": False}
    if np.ptp(randomised) == 0:
        return {"spearman": 0.0, "passed": True}
    rho = float(spearmanr(trained.ravel(), randomised.ravel()).statistic)
    return {"spearman": rho, "passed": abs(rho) < threshold}
