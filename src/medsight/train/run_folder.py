"""A fit that leaves its record in a run folder (`fit_in_run_folder`), the same for every task.

Writes into RUN: ``train_config.json`` (the settings, to reproduce the run), ``history.csv``
(+ ``tensorboard/``, and MLflow when configured: `EpochLog`) and ``checkpoints/`` (the
resumable state, every epoch: `training_state`). The task saves the final model itself.

Under a torchrun launch only global rank 0 writes here (`medsight.train.distributed`); its
``train_config.json`` then also records the launch (``distributed``: strategy, backend, world
size, nodes, global and per-rank batch), a record beside the settings, not one of them:
``--resume`` may continue a run on another number of ranks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from medsight.runs.atomic import write_text_atomic
from medsight.train.config import LoopConfig
from medsight.train.distributed import launch_record, torchrun_launch
from medsight.train.epoch_log import EpochLog
from medsight.train.loop import FitResult
from medsight.train.training_state import saved_history

TRAIN_CONFIG_FILE = "train_config.json"
CHECKPOINTS_DIR = "checkpoints"

EpochCallback = Callable[[dict[str, float]], None]


class TaskFit(Protocol):
    """A task's fit with its data bound (e.g. a ``functools.partial`` of `fit_classifier`)."""

    def __call__(self, *, on_epoch: EpochCallback, state_dir: Path, resume: bool) -> FitResult:
        """Train, calling ``on_epoch`` after each epoch, with resumable state in ``state_dir``."""
        ...


def fit_in_run_folder(
    run_dir: Path,
    config: LoopConfig,
    fit: TaskFit,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Run ``fit`` with its settings, per-epoch logs and resumable state in ``run_dir``.

    Under torchrun, ranks other than 0 write nothing: they train, and rank 0 records.

    Args:
        run_dir: the run folder (created if missing).
        config: the settings ``fit`` trains with (saved as ``train_config.json``).
        fit: the task's fit.
        resume: continue the interrupted run in ``run_dir`` (its history is kept).
        on_epoch: called with each epoch's history row, after it is logged.

    Raises:
        InputError: ``resume`` with nothing to resume, or with other settings than the
            interrupted run (checked by the loop).
    """
    state_dir = run_dir / CHECKPOINTS_DIR
    launch = torchrun_launch()
    if launch is not None and launch.rank != 0:
        return fit(on_epoch=on_epoch or (lambda row: None), state_dir=state_dir, resume=resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = config.model_dump_json(indent=2)
    if launch is not None:
        record = {**json.loads(settings), "distributed": launch_record(launch, config.batch_size)}
        settings = json.dumps(record, indent=2)
    write_text_atomic(run_dir / TRAIN_CONFIG_FILE, settings)
    with EpochLog(run_dir, params=config.model_dump()) as log:
        if resume:
            log.rows.extend(saved_history(state_dir))

        def epoch_done(row: dict[str, float]) -> None:
            log.log(row)
            if on_epoch:
                on_epoch(row)

        return fit(on_epoch=epoch_done, state_dir=state_dir, resume=resume)
