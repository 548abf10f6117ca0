"""A risk run's weights on disk: safetensors in, safetensors out, and ``--init`` transfer.

``RUN/model.safetensors`` is the primary sequence model, ``RUN/models/{name}.safetensors``
every trained one; the network is rebuilt from ``plan.json``'s model sizes and the name in
``model.json``. Nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

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
