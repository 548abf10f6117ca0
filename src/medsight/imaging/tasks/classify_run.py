"""Train a classification run end to end and leave a folder inference can use on its own.

Writes into RUN: ``train_config.json``, ``history.csv`` (+ ``tensorboard/``),
``checkpoints/`` (resumable state, every epoch), and the final ``model.safetensors`` +
``model.json`` (the best validation epoch's weights and the contract: classes, plan's
preprocessing, model arguments, versions, seed).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from medsight.imaging.models.checkpoint import ModelContract, library_versions, save_checkpoint
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData
from medsight.imaging.tasks.classify_fit import fit_classifier
from medsight.train.loop import FitResult
from medsight.train.run_folder import fit_in_run_folder


def model_contract(data: ClassificationData, config: TrainConfig, extra: dict) -> ModelContract:
    """The contract saved beside the weights."""
    return ModelContract(
        model_name=config.model_name,
        model_kwargs=config.model_kwargs,
        class_names=data.class_names,
        in_channels=config.in_channels,
        spatial_dims=config.spatial_dims,
        preprocess=data.plan.preprocess,
        seed=config.seed,
        versions=library_versions(),
        extra=extra,
    )


def train_classification_run(
    data: ClassificationData,
    config: TrainConfig,
    run_dir: Path,
    resume: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    prepare_model: Callable[[torch.nn.Module], None] | None = None,
) -> FitResult:
    """Fit on the train split, select on val, and save the run.

    Raises:
        InputError: ``resume`` with nothing to resume, or with other settings than the
            interrupted run (checked by the training loop).
    """
    train, val = data.indices("train"), data.indices("val")
    fit = fit_in_run_folder(
        run_dir,
        config,
        partial(
            fit_classifier,
            data.volumes.subset(train),
            data.labels[train],
            data.volumes.subset(val),
            data.labels[val],
            len(data.class_names),
            config,
            prepare_model=prepare_model,
        ),
        resume=resume,
        on_epoch=on_epoch,
    )
    contract = model_contract(
        data, config, {"best_epoch": fit.best_epoch, "epochs_run": len(fit.history)}
    )
    save_checkpoint(run_dir, fit.model, contract)
    # an export of earlier weights must not outlive them
    (run_dir / "model.onnx").unlink(missing_ok=True)
    return fit
