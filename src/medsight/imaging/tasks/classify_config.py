"""Training settings for classification, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """How a classifier is trained (data-derived settings live in the plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str = "lungct-cnn"
    #: extra constructor arguments, e.g. {"depth": 5} from the plan
    model_kwargs: dict[str, int] = {}
    spatial_dims: Literal[2, 3] = 3
    in_channels: Annotated[int, Field(ge=1)] = 1
    max_epochs: Annotated[int, Field(ge=1)] = 40
    batch_size: Annotated[int, Field(ge=1)] = 4
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    #: "cosine": cosine decay over max_epochs; "steps": x0.1 at 50% and 75% of the epochs
    #: (the MedMNIST v2 protocol); "constant"
    schedule: Literal["cosine", "steps", "constant"] = "cosine"
    #: "loss": class-weighted cross-entropy; "sampler": class-balanced batches; "none"
    imbalance: Literal["loss", "sampler", "none"] = "loss"
    augment: bool = True
    #: epochs without a better validation AUC before stopping
    patience: Annotated[int, Field(ge=1)] = 10
    #: validation AUC differences below this are noise; ties go to the lower validation loss
    auc_tolerance: Annotated[float, Field(ge=0)] = 0.01
    seed: int = 0
    #: bf16 autocast is opt-in: bf16 conv3d training on this CPU (oneDNN) gave NaN losses
    #: and run-to-run drift; fp32 + channels_last was deterministic and almost as fast
    bf16: bool = False
    channels_last: bool = True
    #: stop after this much training wall time and keep the best epoch so far
    max_minutes: Annotated[float, Field(gt=0)] = 10.0
    #: torch CPU threads; 0 = all cores
    threads: Annotated[int, Field(ge=0)] = 0
    #: transfer learning: start from these safetensors weights (head replaced if classes differ)
    init_weights: Path | None = None
    freeze_backbone: bool = False
    #: backbone learning rate = learning_rate * this (per-group learning rates when fine-tuning)
    backbone_lr_scale: Annotated[float, Field(ge=0)] = 1.0
