"""What every training loop sets up first: threads, Fabric (precision, seed), memory format."""

from __future__ import annotations

import torch
from lightning.fabric import Fabric

from medsight.train.config import LoopConfig


def start_fabric(config: LoopConfig) -> tuple[Fabric, torch.memory_format]:
    """A seeded CPU Fabric at the config's precision, and the channels-last format to use.

    bf16 runs as Fabric's ``bf16-mixed`` (autocast); otherwise fp32.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    fabric = Fabric(
        accelerator="cpu", devices=1, precision="bf16-mixed" if config.bf16 else "32-true"
    )
    fabric.seed_everything(config.seed, verbose=False)
    memory_format = torch.channels_last_3d if config.spatial_dims == 3 else torch.channels_last
    return fabric, memory_format
