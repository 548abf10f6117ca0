"""Segmentation's hooks into the training loop (`medsight.train.loop`): `fit_segmenter`.

nnU-Net's training recipe on the engine's loop (seeded batches, resumable state, closed-form
schedule, wall-time budget, best-epoch weights): epochs of a fixed number of patch batches,
foreground oversampling (`PatchSampler`), Dice + cross-entropy (MONAI ``DiceCELoss``: batch
Dice over the structures, background excluded), optional deep supervision, AdamW with the
gradient norm clipped to 12. An epoch is long, so the time budget is checked before every
batch. After each epoch a fixed subset of validation cases is segmented whole with the
sliding window, and the epoch with the best Dice (voxels pooled over the cases, averaged
over the structures) is kept.

Arrays are ``[z, y, x]``: images in model units, labels as channel indices (0 background).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from medsight.errors import InputError
from medsight.evaluate.segmentation.segmentation_metrics import global_dice, overlap_counts
from medsight.imaging.data.patch_sampling import PatchSampler
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.models.registry import create_model
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.train.loop import Batch, FitResult, LoopHooks, StoppingKey, TrainedEpoch, fit

#: validation Dice differences below this are noise
DICE_TOLERANCE = 0.002
#: gradient-norm clipping of every step (nnU-Net's)
CLIP_GRAD_NORM = 12.0


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


def segmentation_loss(
    config: SegmentTrainConfig,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Dice + cross-entropy (MONAI ``DiceCELoss``), averaged over deep-supervision heads."""
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

    Args:
        train_images, train_labels: the training cases (images and label maps).
        val_images, val_labels: the validation cases.
        num_classes: output channels, background included.
        config: training settings.
        background: the image value outside the body (pads patches and windows).
        on_epoch: called with each epoch's history row (after its state is saved).
        state_dir: where per-epoch resumable state is written (None: not written).
        resume: continue from ``state_dir``'s last epoch instead of starting afresh.

    Raises:
        InputError: deep supervision with a network other than dynunet; ``resume`` without
            a readable saved state, or with other settings.
    """
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

    def epoch_batches(generator: torch.Generator, epoch: int) -> Iterator[Batch]:
        for _ in range(config.iterations_per_epoch):
            yield sampler.batch(config.batch_size, generator)

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], StoppingKey]:
        counts: list[list[tuple[int, int, int]]] = [[] for _ in range(1, num_classes)]
        for i in val_subset:
            probs = sliding_window_probabilities(
                trained.network,
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
        val_dice = float(per_class.mean())
        metrics = {
            "val_dice": val_dice,
            **{f"val_dice_{k}": float(v) for k, v in enumerate(per_class, start=1)},
        }
        return metrics, (val_dice, -trained.train_loss)

    def final_model(best_state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
        plain = config.model_copy(update={"deep_supervision": False})
        model = build_segmenter(plain, num_classes)
        if best_state is not None:
            # deep-supervision heads are training-only: drop them
            missing, _ = model.load_state_dict(best_state, strict=False)
            if missing:
                raise RuntimeError(f"best weights lack {missing[:3]}")
        return model

    hooks = LoopHooks(
        build_model=lambda: build_segmenter(config, num_classes),
        make_optimizer=lambda model: torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        epoch_batches=epoch_batches,
        loss=segmentation_loss(config),
        validate=validate,
        final_model=final_model,
        tolerance=DICE_TOLERANCE,
        clip_grad_norm=CLIP_GRAD_NORM,
        stop_mid_epoch=True,
    )
    return fit(config, hooks, on_epoch=on_epoch, state_dir=state_dir, resume=resume)
