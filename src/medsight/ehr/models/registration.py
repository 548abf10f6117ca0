"""``@register_ehr_model("gru")``: how a model family adds itself to the EHR model registry.

Kept apart from `registry` (which imports every built-in family) so that families can
register without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

M = TypeVar("M", bound=type[nn.Module])
#: name -> model class, constructed as ``cls(spec)``
MODELS: dict[str, type[nn.Module]] = {}


def register_ehr_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a model class (constructed as ``cls(spec)``) as ``name``."""

    def add(cls: M) -> M:
        if name in MODELS:
            raise ValueError(f"EHR model {name!r} registered twice")
        MODELS[name] = cls
        return cls

    return add
