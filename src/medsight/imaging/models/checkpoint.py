"""A trained model on disk: ``model.safetensors`` (weights) + ``model.json`` (the contract).

The JSON carries what inference needs and nothing it must guess: model name, class names,
input channels and dims, the preprocessing contract, library versions and the seed. Weights
are safetensors only: nothing a user supplies is ever unpickled.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import medsight
from medsight.errors import InputError
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.runs.atomic import atomic_path, write_text_atomic
from medsight.runs.weights import unshared

WEIGHTS, CONTRACT = "model.safetensors", "model.json"


class ModelContract(BaseModel):
    """Everything needed to rebuild a model and feed it correctly."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str
    task: str = "classify"
    class_names: list[str]
    in_channels: int = 1
    spatial_dims: int = 3
    preprocess: PreprocessContract
    model_kwargs: dict[str, int | float] = {}
    #: segmentation: the sliding window (training patch) and the label value of each
    #: output channel after background (``class_names[k]`` is value ``label_values[k - 1]``)
    patch_size: tuple[int, int, int] | None = None
    label_values: list[int] = []
    seed: int
    versions: dict[str, str] = {}
    extra: dict[str, Any] = {}


def library_versions() -> dict[str, str]:
    """Versions recorded next to every model."""
    import monai
    import pydicom

    return {
        "medsight": medsight.__version__,
        "torch": torch.__version__,
        "monai": monai.__version__,
        "pydicom": pydicom.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(run_dir: Path, model: nn.Module, contract: ModelContract) -> None:
    """Write weights and contract into ``run_dir`` (each file atomically)."""
    state = unshared(model.state_dict())
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"model_name": contract.model_name})
    write_text_atomic(run_dir / CONTRACT, contract.model_dump_json(indent=2))


def read_contract(run_dir: Path) -> ModelContract:
    """The contract of the run in ``run_dir`` (weights are not read).

    Raises:
        InputError: ``model.json`` is missing or invalid.
    """
    contract_path = Path(run_dir) / CONTRACT
    if not contract_path.is_file():
        raise InputError(
            f"{contract_path}: missing; train a model first (`medsight demo` makes one)"
        )
    try:
        return ModelContract.model_validate(json.loads(contract_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise InputError(f"{contract_path}: invalid model contract ({first})") from None


def load_checkpoint(run_dir: Path) -> tuple[nn.Module, ModelContract]:
    """Rebuild the model saved in ``run_dir`` (eval mode, CPU).

    Raises:
        InputError: a file is missing, the JSON is invalid, the weights are not a readable
            safetensors file, or they do not fit the model the contract names.
    """
    run_dir = Path(run_dir)
    contract_path, weights_path = run_dir / CONTRACT, run_dir / WEIGHTS
    contract = read_contract(run_dir)
    if not weights_path.is_file():
        raise InputError(
            f"{weights_path}: missing; train a model first (`medsight demo` makes one)"
        )
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    try:
        model = create_model(
            contract.model_name,
            in_channels=contract.in_channels,
            num_classes=len(contract.class_names),
            spatial_dims=contract.spatial_dims,
            **contract.model_kwargs,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{contract_path}: cannot build {contract.model_name!r} ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise InputError(
            f"{weights_path}: weights do not match model {contract.model_name!r}"
        ) from None
    return model.eval(), contract
