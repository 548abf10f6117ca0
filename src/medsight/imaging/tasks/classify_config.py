"""Training settings for classification, saved as ``train_config.json`` in every run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from medsight.imaging.preprocess.augmentation import AugmentSpec, augment_preset
from medsight.train.config import LoopConfig, NonNegative


class TrainConfig(LoopConfig):
    """How a classifier is trained (data-derived settings live in the plan).

    The shared settings (network, optimiser, schedule, patience, hardware) and their
    defaults are `LoopConfig`'s; early stopping watches the validation macro AUC.
    """

    model_name: str = "lungct-cnn"
    #: "loss": class-weighted cross-entropy; "sampler": class-balanced batches; "none"
    imbalance: Literal["loss", "sampler", "none"] = "loss"
    augment: bool = True
    #: the plan's augmentation (`medsight.imaging.preprocess.augmentation`); the default is
    #: what training did before plans chose it (left-right flips and small shifts)
    augmentation: AugmentSpec = augment_preset("flip+shift")
    #: validation AUC differences below this are noise; ties go to the lower validation loss
    auc_tolerance: NonNegative = 0.01
    #: transfer learning: start from these safetensors weights (head replaced if classes differ)
    init_weights: Path | None = None
    freeze_backbone: bool = False
    #: backbone learning rate = learning_rate * this (per-group learning rates when fine-tuning)
    backbone_lr_scale: Annotated[float, Field(ge=0)] = 1.0
