"""Classification's hooks into the training loop (`medsight.train.loop`): `fit_classifier`.

Adam (per-group learning rates when fine-tuning), class-weighted cross-entropy or
class-balanced batches, the plan's seeded augmentation (its per-sample records written to
``checkpoints/augmentation/epoch_NNNN.json`` so any batch can be replayed; `replay_batch`),
and early stopping on the validation macro
AUC (ties within ``auc_tolerance`` go to the lower validation loss). The loop itself (Fabric,
resumable state, schedule, patience, time budget) is the engine's.

Arrays are ``(N, z, y, x)`` for 3D models and ``(N, y, x)`` for 2D ones, values in model
units (e.g. [0, 1] after an HU window); a channel axis is added here, unless the arrays
already have one (``(N, C, *spatial)``, e.g. colour MedMNIST images).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medsight.evaluate.classification.classification_metrics import macro_auc
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.inference.predictor import predict_probabilities, with_channel_axis
from medsight.imaging.models.registry import create_model
from medsight.imaging.models.transfer import param_groups
from medsight.imaging.preprocess.augmentation import augment_batch
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.runs.atomic import write_text_atomic
from medsight.train.loop import Batch, FitResult, LoopHooks, StoppingKey, TrainedEpoch, fit

Arrays = np.ndarray | CachedVolumes

#: the validation AUC when a class is missing from the validation split: chance, so that
#: early stopping still has a number (the reports say ``None``)
AUC_UNDEFINED = 0.5


def build_model(config: TrainConfig, num_classes: int) -> torch.nn.Module:
    """The registry model ``config`` names, with the class count of the data."""
    return create_model(
        config.model_name,
        in_channels=config.in_channels,
        num_classes=num_classes,
        spatial_dims=config.spatial_dims,
        **config.model_kwargs,
    )


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.backbone_lr_scale != 1.0:
        # per-group learning rates when fine-tuning: the head learns at the full rate
        groups = param_groups(
            model, config.learning_rate * config.backbone_lr_scale, config.learning_rate
        )
        return torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _epoch_order(
    labels: np.ndarray, config: TrainConfig, generator: torch.Generator
) -> torch.Tensor:
    if config.imbalance != "sampler":
        return torch.randperm(len(labels), generator=generator)
    counts = np.bincount(labels)
    weights = torch.tensor(1.0 / counts[labels], dtype=torch.float64)
    return torch.multinomial(weights, len(labels), replacement=True, generator=generator)


def fit_classifier(
    train_x: Arrays,
    train_y: np.ndarray,
    val_x: Arrays,
    val_y: np.ndarray,
    num_classes: int,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
    prepare_model: Callable[[torch.nn.Module], None] | None = None,
) -> FitResult:
    """Train ``config.model_name`` and return the weights of the best validation epoch.

    Args:
        train_x, val_x: preprocessed arrays (see the module docstring).
        train_y, val_y: integer class indices.
        num_classes: number of outputs.
        config: training settings.
        on_epoch: called with each epoch's history row (after its state is saved).
        state_dir: where per-epoch resumable state is written (None: not written).
        resume: continue from ``state_dir``'s last epoch instead of starting afresh.
        prepare_model: called on the new model before training (e.g. loading pretrained
            weights and freezing the backbone for transfer learning).

    Raises:
        InputError: ``resume`` without a readable saved state in ``state_dir``, or with
            other settings than the saved state was trained with.
    """

    counts = np.bincount(train_y, minlength=num_classes).astype(np.float32)
    weights = (
        torch.tensor(counts.sum() / np.maximum(counts, 1) / num_classes)
        if config.imbalance == "loss"
        else None
    )
    labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    val_labels = torch.from_numpy(np.asarray(val_y, dtype=np.int64))

    def new_model() -> torch.nn.Module:
        model = build_model(config, num_classes)
        if prepare_model is not None:
            prepare_model(model)
        return model

    def epoch_batches(generator: torch.Generator, epoch: int) -> Iterator[Batch]:
        order = _epoch_order(np.asarray(train_y), config, generator)
        drawn: list[dict[str, object]] = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            batch = with_channel_axis(
                torch.from_numpy(np.asarray(train_x[idx.numpy()], dtype=np.float32)),
                config.spatial_dims,
            )
            if config.augment:
                batch, records = augment_batch(batch, generator, config.augmentation)
                drawn += [
                    {"index": int(k), "records": r} for k, r in zip(idx, records, strict=True)
                ]
            yield batch, labels[idx]
        if state_dir is not None and config.augment:
            write_text_atomic(
                state_dir / "augmentation" / f"epoch_{epoch:04d}.json",
                json.dumps({"spec": config.augmentation.name, "samples": drawn}),
            )

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target, weight=weights)

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], StoppingKey]:
        probs = predict_probabilities(trained.model, val_x, spatial_dims=config.spatial_dims)
        log_probs = torch.log(torch.from_numpy(probs).clamp_min(1e-7))
        val_loss = float(F.nll_loss(log_probs, val_labels))
        auc = macro_auc(val_y, probs)
        val_auc = AUC_UNDEFINED if auc is None else auc
        metrics = {
            "val_loss": val_loss,
            "val_auc": val_auc,
            "val_accuracy": float((probs.argmax(1) == val_y).mean()),
        }
        return metrics, (val_auc, -val_loss)

    def final_model(best_state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
        model = build_model(config, num_classes)
        if best_state is not None:
            model.load_state_dict(best_state)
        return model

    hooks = LoopHooks(
        build_model=new_model,
        make_optimizer=lambda model: _optimizer(model, config),
        epoch_batches=epoch_batches,
        loss=loss,
        validate=validate,
        final_model=final_model,
        tolerance=config.auc_tolerance,
    )
    return fit(config, hooks, on_epoch=on_epoch, state_dir=state_dir, resume=resume)
