"""Training settings for classification, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """How a classifier is trained (data-derived settings live in the preprocessing contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str = "lungct-cnn"
    max_epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(8, ge=1, description="epochs without a better val AUC before stopping")
    seed: int = 0
    bf16: bool = False  # opt-in: bf16 conv3d training on CPU gave NaNs and run-to-run drift here
    channels_last: bool = True
    max_minutes: float = Field(
        9.0, gt=0, description="stop after this wall time, keep the best epoch"
    )
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = all cores")
