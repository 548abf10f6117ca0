"""Training settings for segmentation, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class SegmentTrainConfig(BaseModel):
    """How a segmentation network is trained (patch size, depth, spacing come from the plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_name: str = "dynunet"
    #: constructor arguments from the plan, e.g. {"depth": 4, "base_filters": 16}
    model_kwargs: dict[str, int] = {}
    spatial_dims: Literal[2, 3] = 3
    in_channels: Annotated[int, Field(ge=1)] = 1
    patch_size: tuple[int, int, int] = (32, 96, 96)
    batch_size: Annotated[int, Field(ge=1)] = 2
    #: an "epoch" is this many batches (as nnU-Net's 250 iterations), then validation
    iterations_per_epoch: Annotated[int, Field(ge=1)] = 50
    max_epochs: Annotated[int, Field(ge=1)] = 40
    learning_rate: Annotated[float, Field(gt=0)] = 3e-3
    weight_decay: Annotated[float, Field(ge=0)] = 3e-5
    schedule: Literal["cosine", "steps", "constant"] = "cosine"
    #: share of patches centred on a labelled voxel of a randomly chosen structure
    #: (nnU-Net: 0.33); small structures are chosen as often as large ones
    foreground_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: weight of the Dice term against cross-entropy (MONAI DiceCELoss)
    dice_weight: Annotated[float, Field(ge=0)] = 1.0
    deep_supervision: bool = False
    #: validation cases scored every epoch (sliding window over whole volumes); the full
    #: validation split is used once at the end to choose post-processing
    val_cases_per_epoch: Annotated[int, Field(ge=1)] = 12
    #: epochs without a better validation Dice before stopping
    patience: Annotated[int, Field(ge=1)] = 15
    #: window overlap of the validation sliding window
    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.25
    seed: int = 0
    #: see TrainConfig.bf16: bf16 conv3d training is opt-in on CPU
    bf16: bool = False
    channels_last: bool = True
    max_minutes: Annotated[float, Field(gt=0)] = 10.0
    threads: Annotated[int, Field(ge=0)] = 0
