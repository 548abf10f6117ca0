"""The model registry: names to constructors, filled by explicit decorators.

The registry imports no model family: each family module registers itself with
`register_model` when ``medsight.imaging.models`` (its ``__init__``) imports it, as timm's
families do, so there is no import circle between the registry and the families.

Every registered model takes ``in_channels``, ``num_classes`` and ``spatial_dims`` and
exposes ``forward_features(x)`` (the last convolutional feature map, which Grad-CAM hooks
through ``cam_layer``) and ``forward_head(features)`` (logits), as timm models do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from medsight.errors import InputError


class Classifier(Protocol):
    """The surface every classification model offers."""

    cam_layer: str

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, features: torch.Tensor) -> torch.Tensor: ...


_MODELS: dict[str, Callable[..., nn.Module]] = {}


_TASKS: dict[str, str] = {}


def register_model(
    name: str, task: str = "classify"
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model constructor under ``name`` for ``task``.

    Classification models return ``(N, classes)`` logits and offer `Classifier`'s surface;
    segmentation models return ``(N, classes, *spatial)`` logits.
    """

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = factory
        _TASKS[name] = task
        return factory

    return add


def list_models(task: str | None = None) -> list[str]:
    """Names of every registered model (of ``task``: classify or segment, if given)."""
    return sorted(n for n in _MODELS if task is None or _TASKS[n] == task)


def model_task(name: str) -> str:
    """The task ``name`` was registered for.

    Raises:
        InputError: no model has that name.
    """
    if name not in _TASKS:
        raise InputError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _TASKS[name]


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model registered as ``name``.

    Raises:
        InputError: no model has that name.
    """
    if name not in _MODELS:
        raise InputError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)
