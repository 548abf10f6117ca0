"""Fit a classifier on preprocessed arrays with Lightning Fabric.

Fabric (not the full Trainer) because the loop is short and must be explicit about three
things the demo depends on: seeded batch order and augmentation, bf16 autocast with
channels_last on CPU, and early stopping that keeps the best validation-AUC weights.
Fabric still gives devices and precision plugins, so the same loop runs on a GPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from lightning.fabric import Fabric
from sklearn.metrics import roc_auc_score

from medsight.models.predictor import predict_probabilities
from medsight.models.registry import create_model
from medsight.train.config import TrainConfig


@dataclass
class FitResult:
    """The best model and the per-epoch history."""

    model: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest macro ROC-AUC; 0.5 when a class is missing (cannot be scored)."""
    if len(np.unique(y)) < probs.shape[1]:
        return 0.5
    return float(
        roc_auc_score(
            y, probs, multi_class="ovr", average="macro", labels=list(range(probs.shape[1]))
        )
    )


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Seeded left-right flips and small shifts (voxels) of a batch ``(N, 1, z, y, x)``."""
    out = []
    for sample in x:
        if torch.rand((), generator=generator) < 0.5:
            sample = sample.flip(-1)
        shifts = [int(v) for v in torch.randint(-3, 4, (3,), generator=generator)]
        out.append(
            torch.roll(sample, shifts=(shifts[0], 2 * shifts[1], 2 * shifts[2]), dims=(1, 2, 3))
        )
    return torch.stack(out)


def fit_classifier(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    num_classes: int,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``config.model_name`` and return the weights of the best validation epoch.

    Args:
        train_x, val_x: preprocessed arrays ``(N, z, y, x)`` (float16 or float32, in [0, 1]).
        train_y, val_y: integer class indices.
        num_classes: number of outputs.
        config: training settings.
        on_epoch: called with each epoch's history row.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    fabric = Fabric(
        accelerator="cpu", devices=1, precision="bf16-mixed" if config.bf16 else "32-true"
    )
    fabric.seed_everything(config.seed, verbose=False)
    model = create_model(
        config.model_name,
        in_channels=1,
        num_classes=num_classes,
        spatial_dims=3,
        **config.model_kwargs,
    )
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    # cosine decay over the epoch budget: large steps find the nodules, small ones settle
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
    model, optimizer = fabric.setup(model, optimizer)
    counts = np.bincount(train_y, minlength=num_classes).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / num_classes)
    generator = torch.Generator().manual_seed(config.seed)
    train_tensor = torch.from_numpy(np.asarray(train_x))
    labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    best_state, best_key, best_epoch, stale = None, (-1.0, 0.0), 0, 0
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(len(train_tensor), generator=generator)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            x = _augment(train_tensor[idx].float()[:, None], generator)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            loss = F.cross_entropy(model(x).float(), labels[idx], weight=weights)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            optimizer.step()
            losses.append(float(loss.detach()))
        lr = float(optimizer.param_groups[0]["lr"])
        schedule.step()
        val_probs = predict_probabilities(model, val_x)
        val_loss = float(
            F.nll_loss(
                torch.log(torch.from_numpy(val_probs).clamp_min(1e-7)), torch.from_numpy(val_y)
            )
        )
        auc = macro_auc(val_y, val_probs)
        acc = float((val_probs.argmax(1) == val_y).mean())
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "val_auc": auc,
            "val_accuracy": acc,
            "lr": lr,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if on_epoch:
            on_epoch(row)
        key = (auc, -val_loss)
        if key > best_key:
            best_key, best_epoch, stale = key, epoch, 0
            best_state = copy.deepcopy(
                model.module.state_dict() if hasattr(model, "module") else model.state_dict()
            )
        else:
            stale += 1
        if stale >= config.patience or time.perf_counter() - start > config.max_minutes * 60:
            break
    final = create_model(
        config.model_name,
        in_channels=1,
        num_classes=num_classes,
        spatial_dims=3,
        **config.model_kwargs,
    )
    if best_state is not None:
        final.load_state_dict(best_state)
    return FitResult(final.eval(), history, best_epoch, time.perf_counter() - start)
