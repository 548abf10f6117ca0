"""A risk run's weights on disk: safetensors in, safetensors out, and ``--init`` transfer.

``RUN/model.safetensors`` is the primary sequence model, ``RUN/models/{name}.safetensors``
every trained one; the network is rebuilt from ``plan.json``'s model sizes and the name in
``model.json``. Nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from medsight.console import say
from medsight.ehr.models.registry import create_ehr_model
from medsight.ehr.models.spec import ModelSpec
from medsight.errors import InputError
from medsight.runs.weights import read_weights

MODELS_DIR = "models"


def load_model(name: str, spec: ModelSpec, path: Path) -> nn.Module:
    """Model ``name`` with the weights in ``path``, in eval mode.

    Raises:
        InputError: the weights are missing, unreadable or belong to another network.
    """
    model = create_ehr_model(name, spec)
    try:
        model.load_state_dict(read_weights(path))
    except RuntimeError:
        raise InputError(
            f"{path}: weights do not fit model {name!r} with the sizes in plan.json"
        ) from None
    return model.eval()


def transfer_weights(model: nn.Module, path: Path) -> tuple[list[str], list[str]]:
    """Load the tensors of ``path`` whose names and shapes match ``model`` (transfer).

    Returns:
        ``(loaded, skipped)`` tensor names; skipped ones keep their fresh initialisation
        (e.g. the code embedding when the vocabulary differs).

    Raises:
        InputError: the file is unreadable, or not one tensor matches.
    """
    weights = read_weights(path)
    own = model.state_dict()
    loaded = [k for k, v in weights.items() if k in own and own[k].shape == v.shape]
    skipped = sorted(set(own) - set(loaded))
    if not loaded:
        raise InputError(f"{path}: no tensor matches the model (another network family?)")
    model.load_state_dict({k: weights[k] for k in loaded}, strict=False)
    return loaded, skipped


def transfer_preparation(path: Path | None) -> Callable[[nn.Module], None] | None:
    """A ``prepare_model`` hook that loads ``--init`` weights, or None without them.

    Raises:
        InputError: the weights file is missing or not safetensors (checked now).
    """
    if path is None:
        return None
    read_weights(path)

    def prepare(model: nn.Module) -> None:
        loaded, skipped = transfer_weights(model, path)
        note = f"; skipped (new or reshaped): {', '.join(skipped)}" if skipped else ""
        say(f"--init {path}: loaded {len(loaded)} tensors{note}")

    return prepare
