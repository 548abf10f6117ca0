"""Training settings for classification, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """How a classifier is trained (data-derived settings live in the preprocessing contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str = "lungct-cnn"
    #: extra constructor arguments, e.g. {"depth": 5} from the plan
    model_kwargs: dict[str, int] = {}
    max_epochs: Annotated[int, Field(ge=1)] = 40
    batch_size: Annotated[int, Field(ge=1)] = 4
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    #: epochs without a better validation AUC before stopping
    patience: Annotated[int, Field(ge=1)] = 10
    seed: int = 0
    #: bf16 autocast is opt-in: bf16 conv3d training on this CPU (oneDNN) gave NaN losses
    #: and run-to-run drift; fp32 + channels_last was deterministic and almost as fast
    bf16: bool = False
    channels_last: bool = True
    #: stop after this much training wall time and keep the best epoch so far
    max_minutes: Annotated[float, Field(gt=0)] = 9.0
    #: torch CPU threads; 0 = all cores
    threads: Annotated[int, Field(ge=0)] = 0
