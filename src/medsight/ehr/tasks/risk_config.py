"""Training settings of one EHR sequence model, saved as its ``train_config.json``."""

from __future__ import annotations

from pathlib import Path

from medsight.train.config import AtLeastOne, LoopConfig, NonNegative


class RiskTrainConfig(LoopConfig):
    """How one sequence model of a risk run is trained (data-derived sizes live in the plan).

    The shared settings and their defaults are `LoopConfig`'s; sequences are not images, so
    ``channels_last`` is off. Early stopping watches the tuning AUROC.
    """

    model_name: str = "gru"
    channels_last: bool = False
    batch_size: AtLeastOne = 64
    patience: AtLeastOne = 6
    #: positives weigh ``negatives / positives`` in the loss (capped), for rare outcomes
    pos_weight_cap: NonNegative = 50.0
    #: tuning AUROC differences below this are noise; ties go to the lower tuning loss
    auc_tolerance: NonNegative = 0.002
    clip_grad_norm: NonNegative = 1.0
    #: one intra-op thread: a recurrent step is a few small matrix products, and extra
    #: threads only wait on each other (measured on 2 busy cores: a GRU epoch 1.3 s with one
    #: thread, 28 s with two)
    threads: int = 1
    #: transfer: start from these safetensors weights (matching tensors only)
    init_weights: Path | None = None
