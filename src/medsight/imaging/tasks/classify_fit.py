"""Fit a classifier on preprocessed arrays with Lightning Fabric.

Fabric (not the full Trainer) because the loop is short and must be explicit about what
the project's guarantees rest on: seeded batch order and augmentation (same seed, same data,
same metrics), per-epoch resumable state (``--resume`` after a kill ends with the weights an
uninterrupted run would have), early stopping that keeps the best validation-AUC weights,
and channels_last/bf16 on CPU. Fabric still supplies devices and precision plugins, so the
same loop runs on a GPU.

Arrays are ``(N, z, y, x)`` for 3D models and ``(N, y, x)`` for 2D ones, values in model
units (e.g. [0, 1] after an HU window); a channel axis is added here, unless the arrays
already have one (``(N, C, *spatial)``, e.g. colour MedMNIST images).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.inference.predictor import predict_probabilities, with_channel_axis
from medsight.imaging.models.registry import create_model
from medsight.imaging.models.transfer import param_groups
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.train.fabric_setup import start_fabric
from medsight.train.training_state import save_state, start_or_resume

Arrays = np.ndarray | CachedVolumes


@dataclass
class FitResult:
    """The best model and the per-epoch history."""

    model: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest macro ROC-AUC; 0.5 when a class is missing (cannot be scored)."""
    k = probs.shape[1]
    if len(np.unique(y)) < k:
        return 0.5
    if k == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    return float(roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=list(range(k))))


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Seeded left-right flips and small shifts of a batch ``(N, C, *spatial)``."""
    spatial = x.ndim - 2
    out = []
    for sample in x:
        if torch.rand((), generator=generator) < 0.5:
            sample = sample.flip(-1)
        steps = [int(v) for v in torch.randint(-3, 4, (spatial,), generator=generator)]
        # in-plane shifts are doubled: the in-plane grid is finer than the slice spacing
        shifts = tuple(s if spatial == 3 and a == 0 else 2 * s for a, s in enumerate(steps))
        out.append(torch.roll(sample, shifts=shifts, dims=tuple(range(1, spatial + 1))))
    return torch.stack(out)


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


def is_better(key: tuple[float, float], best: tuple[float, float], tolerance: float) -> bool:
    """Early stopping on validation AUC, with AUC differences under ``tolerance`` as noise.

    ``key`` and ``best`` are ``(auc, -loss)``. An epoch is better when its AUC beats the best
    by more than ``tolerance``, or ties with it (within ``tolerance``) at a lower loss: on a
    few dozen validation cases the AUC saturates and jumps by a case, while the loss still
    tells a settling model from a lucky epoch.
    """
    auc, neg_loss = key
    best_auc, best_neg_loss = best
    return auc > best_auc + tolerance or (auc >= best_auc - tolerance and neg_loss > best_neg_loss)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Learning-rate multiplier after ``epoch`` finished epochs (a pure function of epoch).

    Closed forms (not PyTorch's chained schedulers) so that a resumed run lands on exactly the
    rate an uninterrupted one has.
    """
    if config.schedule == "cosine":
        # large steps find the lesions, small ones settle the weights
        return 0.5 * (1 + math.cos(math.pi * min(epoch, config.max_epochs) / config.max_epochs))
    if config.schedule == "steps":
        marks = (config.max_epochs // 2, config.max_epochs * 3 // 4)
        return 0.1 ** sum(epoch >= m for m in marks if m > 0)
    return 1.0


def _set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> None:
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor


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
    fabric, memory_format = start_fabric(config)
    model = build_model(config, num_classes)
    if prepare_model is not None:
        prepare_model(model)
    if config.channels_last:
        model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = _optimizer(model, config)
    base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    generator = torch.Generator().manual_seed(config.seed)
    loop, best_state = start_or_resume(
        state_dir, model, optimizer, generator, config.model_dump_json(), resume
    )
    model, optimizer = fabric.setup(model, optimizer)
    counts = np.bincount(train_y, minlength=num_classes).astype(np.float32)
    weights = (
        torch.tensor(counts.sum() / np.maximum(counts, 1) / num_classes)
        if config.imbalance == "loss"
        else None
    )
    labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    start = time.perf_counter() - (loop.history[-1]["seconds"] if loop.history else 0.0)
    for epoch in range(loop.epoch + 1, config.max_epochs + 1):
        if loop.stale >= config.patience or time.perf_counter() - start > config.max_minutes * 60:
            break
        _set_lr(optimizer, base_lrs, lr_factor(config, epoch - 1))
        model.train()
        order = _epoch_order(np.asarray(train_y), config, generator)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            batch = with_channel_axis(
                torch.from_numpy(np.asarray(train_x[idx.numpy()], dtype=np.float32)),
                config.spatial_dims,
            )
            x = _augment(batch, generator) if config.augment else batch
            if config.channels_last:
                x = x.contiguous(memory_format=memory_format)
            loss = F.cross_entropy(model(x).float(), labels[idx], weight=weights)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            optimizer.step()
            losses.append(float(loss.detach()))
        lr = float(optimizer.param_groups[-1]["lr"])
        val_probs = predict_probabilities(model, val_x, spatial_dims=config.spatial_dims)
        log_probs = torch.log(torch.from_numpy(val_probs).clamp_min(1e-7))
        val_loss = float(F.nll_loss(log_probs, torch.from_numpy(np.asarray(val_y, dtype=np.int64))))
        auc = macro_auc(val_y, val_probs)
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "val_auc": auc,
            "val_accuracy": float((val_probs.argmax(1) == val_y).mean()),
            "lr": lr,
            "seconds": time.perf_counter() - start,
        }
        loop.history.append(row)
        loop.epoch = epoch
        key = (auc, -val_loss)
        if is_better(key, loop.best_key, config.auc_tolerance):
            loop.best_key, loop.best_epoch, loop.stale = key, epoch, 0
            best_state = copy.deepcopy(model.module.state_dict())
        else:
            loop.stale += 1
        if state_dir is not None:
            save_state(state_dir, model.module, optimizer, generator, loop, best_state)
        if on_epoch:
            on_epoch(row)
    final = build_model(config, num_classes)
    if best_state is not None:
        final.load_state_dict(best_state)
    seconds = loop.history[-1]["seconds"] if loop.history else 0.0
    return FitResult(final.eval(), loop.history, loop.best_epoch, seconds)
