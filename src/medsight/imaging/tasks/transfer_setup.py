"""Transfer learning for a training run: check the checkpoint, then load, freeze, report.

The checks run before any data is touched by the model: a checkpoint trained on other
channels or dimensions (or, when the head is kept, other classes) is refused with every
mismatch named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import ValidationError

from medsight.errors import InputError
from medsight.imaging.models.checkpoint import CONTRACT, ModelContract
from medsight.imaging.models.transfer import (
    check_compatible,
    freeze_backbone,
    load_pretrained,
    read_weights,
)
from medsight.imaging.tasks.classify_config import TrainConfig


def transfer_preparation(
    config: TrainConfig, class_names: list[str], replace_head: bool = True
) -> Callable[[torch.nn.Module], None] | None:
    """A ``prepare_model`` hook for `fit_classifier`, or None without ``config.init_weights``.

    Raises:
        InputError: the weights file is missing, not safetensors, or its ``model.json``
            contract does not fit the data.
    """
    weights = config.init_weights
    if weights is None:
        return None
    weights = Path(weights)
    read_weights(weights)  # refuses a missing or non-safetensors file now, before training
    contract_path = weights.parent / CONTRACT
    if contract_path.is_file():
        try:
            contract = ModelContract.model_validate(json.loads(contract_path.read_text()))
        except (json.JSONDecodeError, ValidationError):
            raise InputError(
                f"{contract_path}: invalid model contract beside --init weights"
            ) from None
        check_compatible(
            contract,
            config.in_channels,
            config.spatial_dims,
            None if replace_head else class_names,
            model_name=config.model_name,
        )

    def prepare(model: torch.nn.Module) -> None:
        load_pretrained(model, weights, replace_head=replace_head)
        if config.freeze_backbone:
            freeze_backbone(model)

    return prepare
