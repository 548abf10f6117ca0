"""Training settings for segmentation, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from medsight.train.config import AtLeastOne, LoopConfig, NonNegative, Positive


class SegmentTrainConfig(LoopConfig):
    """How a segmentation network is trained (patch size, depth, spacing come from the plan).

    The shared settings are `LoopConfig`'s, with nnU-Net-like defaults here; early stopping
    watches the validation Dice.
    """

    model_name: str = "dynunet"
    batch_size: AtLeastOne = 2
    learning_rate: Positive = 3e-3
    weight_decay: NonNegative = 3e-5
    patience: AtLeastOne = 15
    patch_size: tuple[int, int, int] = (32, 96, 96)
    #: an "epoch" is this many batches (as nnU-Net's 250 iterations), then validation
    iterations_per_epoch: AtLeastOne = 50
    #: share of patches centred on a labelled voxel of a randomly chosen structure
    #: (nnU-Net: 0.33); small structures are chosen as often as large ones
    foreground_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    #: weight of the Dice term against cross-entropy (MONAI DiceCELoss)
    dice_weight: NonNegative = 1.0
    deep_supervision: bool = False
    #: validation cases scored every epoch (sliding window over whole volumes); the full
    #: validation split is used once at the end to choose post-processing
    val_cases_per_epoch: AtLeastOne = 12
    #: window overlap of the validation sliding window
    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.25
