"""The EHR model registry: `create_ehr_model` and `list_ehr_models` over every built-in family.

Every registered model maps a batch (a dict of tensors, see `medsight.ehr.models.embedding`)
to logits ``(N,)`` and exposes ``embed(batch) -> (N, L, D)`` event embeddings and
``forward_embedded(embeddings, batch) -> (N,)``, so attributions over event embeddings
(integrated gradients) work for any of them. Families register with
``@register_ehr_model(name)`` (`medsight.ehr.models.registration`).
"""

from __future__ import annotations

from typing import Protocol

from torch import nn

# the built-in families register on import (explicit imports, never a folder scan)
import medsight.ehr.models.recurrent  # noqa: F401
import medsight.ehr.models.retain  # noqa: F401
import medsight.ehr.models.transformer  # noqa: F401
from medsight.ehr.models.registration import MODELS, register_ehr_model
from medsight.ehr.models.spec import ModelSpec
from medsight.errors import InputError

__all__ = ["create_ehr_model", "list_ehr_models", "register_ehr_model"]


class HasModelSpec(Protocol):
    """A plan (or anything) that carries a `ModelSpec` as ``model``."""

    @property
    def model(self) -> ModelSpec:
        """The model sizes."""
        ...


def list_ehr_models() -> list[str]:
    """Names of every registered model."""
    return sorted(MODELS)


def create_ehr_model(name: str, spec: ModelSpec | HasModelSpec) -> nn.Module:
    """A new model ``name`` sized by ``spec`` (a `ModelSpec`, or a plan carrying one).

    Raises:
        InputError: no model has that name.
    """
    if name not in MODELS:
        raise InputError(f"unknown EHR model {name!r}; available: {', '.join(sorted(MODELS))}")
    sizes = spec if isinstance(spec, ModelSpec) else spec.model
    return MODELS[name](sizes)
