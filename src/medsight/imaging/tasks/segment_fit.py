"""Fit a segmentation network on cached cases with Lightning Fabric.

The loop mirrors `classifier_fit`'s guarantees (seeded batches, per-epoch resumable state in
safetensors, closed-form learning-rate schedule, wall-time budget, best-epoch weights) with
nnU-Net's training recipe: epochs of a fixed number of patch batches, foreground
oversampling (`PatchSampler`), Dice + cross-entropy (MONAI ``DiceCELoss``: batch Dice over
the structures, background excluded) and optional deep supervision. After each epoch a
fixed subset of validation cases is segmented whole with the sliding window, and the epoch
with the best mean Dice over the structures is kept.

Arrays are ``[z, y, x]``: images in model units, labels as channel indices (0 background).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from medsight.errors import InputError
from medsight.imaging.data.patch_sampling import PatchSampler
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.models.registry import create_model
from medsight.imaging.tasks.classify_fit import FitResult, is_better, lr_factor
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.train.fabric_setup import start_fabric
from medsight.train.training_state import save_state, start_or_resume

#: validation Dice differences below this are noise
DICE_TOLERANCE = 0.002


def build_segmenter(config: SegmentTrainConfig, num_classes: int) -> torch.nn.Module:
    """The registry network ``config`` names, with ``num_classes`` outputs."""
    kwargs = dict(config.model_kwargs)
    if config.deep_supervision:
        if config.model_name != "dynunet":
            raise InputError("deep supervision needs --model dynunet (nnU-Net's architecture)")
        kwargs["deep_supervision"] = 1
    return create_model(
        config.model_name,
        in_channels=config.in_channels,
        num_classes=num_classes,
        spatial_dims=config.spatial_dims,
        **kwargs,
    )


def dice_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> list[float]:
    """Dice of each structure 1..num_classes-1 (1.0 when both are empty)."""
    return [global_dice([overlap_counts(pred, truth, k)]) for k in range(1, num_classes)]


def overlap_counts(pred: np.ndarray, truth: np.ndarray, k: int) -> tuple[int, int, int]:
    """True-positive, false-positive and false-negative voxels of structure ``k``."""
    p, t = pred == k, truth == k
    tp = int((p & t).sum())
    return tp, int(p.sum()) - tp, int(t.sum()) - tp


def global_dice(counts: list[tuple[int, int, int]]) -> float:
    """Dice over voxels pooled from many cases (nnU-Net's validation "pseudo Dice").

    Pooling keeps cases without the structure from counting as perfect: a model that never
    predicts nodules scores 0 here, not the share of nodule-free cases.
    """
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2 * tp + fp + fn)


def _loss_fn(config: SegmentTrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    dice_ce = DiceCELoss(
        include_background=False,
        to_onehot_y=True,
        softmax=True,
        batch=True,
        lambda_dice=config.dice_weight,
        lambda_ce=1.0,
    )

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.ndim == target.ndim + 1:  # deep supervision: (N, heads, C, ...)
            heads = output.unbind(1)
            weights = [0.5**i for i in range(len(heads))]
            total = sum(w * dice_ce(h.float(), target) for w, h in zip(weights, heads, strict=True))
            return total / sum(weights)
        return dice_ce(output.float(), target)

    return loss


def fit_segmenter(
    train_images: CachedVolumes,
    train_labels: CachedVolumes,
    val_images: CachedVolumes,
    val_labels: CachedVolumes,
    num_classes: int,
    config: SegmentTrainConfig,
    background: float,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train ``config.model_name`` and return the weights of the best validation epoch.

    Raises:
        InputError: ``resume`` without a readable saved state, or with other settings.
    """
    fabric, memory_format = start_fabric(config)
    model = build_segmenter(config, num_classes)
    if config.channels_last:
        model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    generator = torch.Generator().manual_seed(config.seed)
    loop, best_state = start_or_resume(
        state_dir, model, optimizer, generator, config.model_dump_json(), resume
    )
    model, optimizer = fabric.setup(model, optimizer)
    sampler = PatchSampler(
        train_images,
        train_labels,
        num_classes,
        config.patch_size,
        config.foreground_fraction,
        background,
        config.seed,
    )
    rng = np.random.default_rng(config.seed)
    n_val = min(config.val_cases_per_epoch, len(val_images))
    val_subset = sorted(rng.choice(len(val_images), size=n_val, replace=False).tolist())
    loss_fn = _loss_fn(config)
    start = time.perf_counter() - (loop.history[-1]["seconds"] if loop.history else 0.0)
    budget_s = config.max_minutes * 60
    for epoch in range(loop.epoch + 1, config.max_epochs + 1):
        if loop.stale >= config.patience or time.perf_counter() - start > budget_s:
            break
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * lr_factor(config, epoch - 1)  # type: ignore[arg-type]
        model.train()
        losses: list[float] = []
        for _ in range(config.iterations_per_epoch):
            if losses and time.perf_counter() - start > budget_s:
                break  # out of time: validate this shortened epoch and stop
            x, y = sampler.batch(config.batch_size, generator)
            if config.channels_last:
                x = x.contiguous(memory_format=memory_format)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        counts: list[list[tuple[int, int, int]]] = [[] for _ in range(1, num_classes)]
        for i in val_subset:
            probs = sliding_window_probabilities(
                model.module,
                val_images[i],
                config.patch_size,
                num_classes,
                overlap=config.overlap,
                background=background,
                bf16=config.bf16,
                channels_last=config.channels_last,
            )
            pred, truth = probs.argmax(0).numpy(), val_labels[i]
            for k in range(1, num_classes):
                counts[k - 1].append(overlap_counts(pred, truth, k))
        per_class = np.array([global_dice(c) for c in counts])
        row: dict[str, float] = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_dice": float(per_class.mean()),
            **{f"val_dice_{k}": float(v) for k, v in enumerate(per_class, start=1)},
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - start,
        }
        loop.history.append(row)
        loop.epoch = epoch
        key = (row["val_dice"], -row["train_loss"])
        if is_better(key, loop.best_key, DICE_TOLERANCE):
            loop.best_key, loop.best_epoch, loop.stale = key, epoch, 0
            best_state = copy.deepcopy(model.module.state_dict())
        else:
            loop.stale += 1
        if state_dir is not None:
            save_state(state_dir, model.module, optimizer, generator, loop, best_state)
        if on_epoch:
            on_epoch(row)
    final = build_segmenter(config.model_copy(update={"deep_supervision": False}), num_classes)
    if best_state is not None:
        # deep-supervision heads are training-only: drop them
        missing, _ = final.load_state_dict(best_state, strict=False)
        if missing:
            raise RuntimeError(f"best weights lack {missing[:3]}")
    seconds = loop.history[-1]["seconds"] if loop.history else 0.0
    return FitResult(final.eval(), loop.history, loop.best_epoch, seconds)
