"""The settings every training loop shares (`LoopConfig`); each task's config extends it.

A task's config adds its own fields and may change a shared field's default (by declaring
it again with the same type alias below), never its validation. Configs are frozen and
saved as ``train_config.json`` in every run, so a run can be reproduced from its folder.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: at least one (epochs, batches, channels, patience)
AtLeastOne = Annotated[int, Field(ge=1)]
#: a learning rate
Positive = Annotated[float, Field(gt=0)]
#: a weight decay
NonNegative = Annotated[float, Field(ge=0)]


class LoopConfig(BaseModel):
    """How `medsight.train.loop.fit` trains: network, optimiser, schedule, stopping, hardware."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    #: a name in the task's model registry
    model_name: str
    #: extra constructor arguments, e.g. {"depth": 5} from the plan
    model_kwargs: dict[str, int | float] = {}
    spatial_dims: Literal[2, 3] = 3
    in_channels: AtLeastOne = 1
    max_epochs: AtLeastOne = 40
    batch_size: AtLeastOne = 4
    learning_rate: Positive = 1e-3
    weight_decay: NonNegative = 1e-4
    #: "cosine": cosine decay over max_epochs; "steps": x0.1 at 50% and 75% of the epochs
    #: (the MedMNIST v2 protocol); "constant"
    schedule: Literal["cosine", "steps", "constant"] = "cosine"
    #: epochs without a better validation score before stopping
    patience: AtLeastOne = 10
    seed: int = 0
    #: the resolved precision (``medsight.hardware.resolve_precision``): bf16 autocast for
    #: convolutions and matmuls, norms and the loss in fp32 (`fabric_setup`); only where the
    #: CPU has native bf16. bf16 runs differ from fp32 runs in the last bits, so it is not the
    #: default of a config (the CLI's ``--precision`` chooses)
    bf16: bool = False
    channels_last: bool = True
    #: keep the last epoch's weights, not the best validation epoch's: a fixed schedule run
    #: to its end (`medsight demo`), so the validation split that calibrates the model (and
    #: fits its thresholds and conformal sets) was not also used to pick among its epochs
    keep_last: bool = False
    #: stop after this much training wall time and keep the best epoch so far
    max_minutes: Annotated[float, Field(gt=0)] = 10.0
    #: torch CPU threads; 0 = all cores
    threads: Annotated[int, Field(ge=0)] = 0
