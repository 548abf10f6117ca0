"""Train a segmentation run end to end and leave a folder inference can use on its own.

Writes into RUN: ``train_config.json``, ``history.csv`` (+ ``tensorboard/``),
``checkpoints/`` (resumable state, every epoch), and the final ``model.safetensors`` +
``model.json`` (best validation epoch's weights; the contract: structures and their label
values, the plan's preprocessing, the patch (sliding window), model arguments, versions).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from medsight.imaging.models.checkpoint import ModelContract, library_versions, save_checkpoint
from medsight.imaging.preprocess.contract import background_value
from medsight.imaging.preprocess.plan import Plan
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.imaging.tasks.segment_data import SegmentationData
from medsight.imaging.tasks.segment_fit import fit_segmenter
from medsight.train.loop import FitResult
from medsight.train.run_folder import fit_in_run_folder


def config_from_plan(plan: Plan, **overrides: object) -> SegmentTrainConfig:
    """Training settings: the plan's network, patch and batch, then the user's overrides."""
    values: dict[str, object] = {
        "model_name": plan.model_name,
        "model_kwargs": dict(plan.model_kwargs),
        "batch_size": plan.batch_size,
    }
    if plan.patch_size is not None:
        values["patch_size"] = plan.patch_size
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SegmentTrainConfig.model_validate(values)


def segmentation_contract(
    data: SegmentationData, config: SegmentTrainConfig, extra: dict
) -> ModelContract:
    """The contract saved beside the weights."""
    return ModelContract(
        model_name=config.model_name,
        task="segment",
        model_kwargs=config.model_kwargs,
        class_names=data.class_names,
        label_values=data.label_values,
        in_channels=config.in_channels,
        spatial_dims=config.spatial_dims,
        patch_size=config.patch_size,
        preprocess=data.plan.preprocess,
        seed=config.seed,
        versions=library_versions(),
        extra=extra,
    )


def train_segmentation_run(
    data: SegmentationData,
    config: SegmentTrainConfig,
    run_dir: Path,
    resume: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Fit on the train split, select on val, and save the run.

    Raises:
        InputError: ``resume`` with nothing to resume, or with other settings.
    """
    train, val = data.indices("train"), data.indices("val")
    fit = fit_in_run_folder(
        run_dir,
        config,
        partial(
            fit_segmenter,
            data.images.subset(train),
            data.labels.subset(train),
            data.images.subset(val),
            data.labels.subset(val),
            len(data.class_names),
            config,
            background_value(data.plan.preprocess),
        ),
        resume=resume,
        on_epoch=on_epoch,
    )
    contract = segmentation_contract(
        data, config, {"best_epoch": fit.best_epoch, "epochs_run": len(fit.history)}
    )
    save_checkpoint(run_dir, fit.model, contract)
    (run_dir / "model.onnx").unlink(missing_ok=True)
    return fit
