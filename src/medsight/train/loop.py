"""The one training loop every task runs (`fit`), and the hooks a task fills in (`LoopHooks`).

Lightning Fabric (not the full Trainer) because the loop is short and must be explicit about
what the project's guarantees rest on:

- seeded batches: one ``torch.Generator``, seeded from the config, is the only randomness
  the task's batches and augmentations may draw from (same seed, same data, same weights);
- resumable state after every epoch (`training_state`): ``--resume`` after a kill ends with
  the weights an uninterrupted run would have;
- a closed-form learning-rate schedule (`lr_factor`), so a resumed run lands on exactly the
  rate an uninterrupted one has;
- early stopping (``patience``) that keeps the best validation epoch's weights (`is_better`),
  or the last epoch's with ``keep_last`` (a fixed schedule run to its end);
- a wall-time budget (``max_minutes``), checked before every epoch and, for tasks whose
  epochs are long, before every batch;
- channels_last and bf16 on CPU; Fabric still supplies devices and precision plugins, so the
  same loop runs on a GPU.

What differs between tasks (the network, the optimiser, an epoch's batches, the loss, how
validation scores an epoch, the final network) comes in through `LoopHooks`.

Where an epoch's time goes (the demo's classifier: lungct-cnn, 180 training volumes of
40x64x104, batch 3, 2 busy AVX-512 cores, fp32, before the changes of issue 15): forward
37%, backward 50%, Adam 13%; batch assembly from the memory-mapped float16 cache 0.4%,
augmentation 0.4%; validation (60 volumes, with flips) 11% on top; `save_state` 0.25 s.
Fabric's wrappers do not show among the profiler's top entries. Adam's 13% and much of the
rest was libgomp spin-waiting on shared cores: with ``OMP_WAIT_POLICY=PASSIVE`` the same
epoch ran 2-2.6x faster and Adam fell to 2% (`fabric_setup`). Per layer, then: the first
block (full resolution, 16 channels) took ~55% of a step, mostly memory-bound batch norm
(22%), ReLU (13%) and max-pool (8%, its backward zero-fill included) forward and backward;
all convolutions together ~40%. What was kept: channels_last_3d (1.35-1.47x over
contiguous; 1.2x with AVX2 only), pooling before the ReLU in training
(`medsight.imaging.models.lungct_cnn`, 1.16-1.22x, bit-identical weights; neutral with AVX2
only), bf16 where native (1.22x). What lost: ``torch.compile`` (54 s warm-up, then 0.91x),
Adam ``fused=True`` (within noise), casting batch norm's input to fp32 under bf16 (0.96x of
fp32, same numbers). A DataLoader with workers would overlap 1% of the epoch while taking
cores from the intra-op threads, so batches stay in the loop's thread.

Under ``torchrun`` the same loop trains data-parallel (`medsight.train.distributed`: how
batches are shared between ranks, the batch and learning-rate rule, who validates and who
writes); a single process runs exactly the steps above, with no process group.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric import Fabric
from torch import nn

from medsight.errors import InputError
from medsight.train.config import LoopConfig
from medsight.train.distributed import (
    PrecisionOnly,
    collective,
    decided_on_rank_zero,
    rank_share,
    seed_rank,
    setup_on_all_ranks,
    share_weight,
    start_or_resume_on_all_ranks,
)
from medsight.train.fabric_setup import norms_in_fp32, start_fabric
from medsight.train.training_state import save_state, start_or_resume

#: a batch: model input (images ``(N, C, *spatial)``, or a dict of tensors for tasks whose
#: networks take several inputs, e.g. event codes, values and times) and its target
Batch = tuple[Any, torch.Tensor]
#: early-stopping key ``(score, tie-breaker)``, both higher-is-better
StoppingKey = tuple[float, float]


@dataclass
class FitResult:
    """The best model and the per-epoch history."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class TrainedEpoch:
    """What validation gets after an epoch's batches."""

    epoch: int
    #: mean training loss over the epoch's batches
    train_loss: float
    #: the Fabric-wrapped model: calling it runs at the config's precision (under DDP, the
    #: network without the DDP wrapper, at that precision: only rank 0 validates)
    model: nn.Module
    #: the bare network inside ``model`` (for code that wants an ``nn.Module`` as built)
    network: nn.Module


@dataclass(frozen=True)
class LoopHooks:
    """What a task supplies to `fit`.

    Attributes:
        build_model: a new network, ready to train (e.g. with pretrained weights loaded);
            called once, after Fabric has seeded the global random state.
        make_optimizer: the optimiser of that network (before Fabric wraps either).
        epoch_batches: the batches of the given epoch (1-based), drawn lazily from the
            given generator (the loop may stop asking mid-epoch); inputs are made
            channels-last by the loop.
        loss: ``loss(model output, target)``, a scalar.
        validate: the epoch's validation metrics (history columns, e.g. ``val_auc``) and
            its early-stopping key (see `is_better`).
        final_model: the network to return, from the best epoch's ``state_dict`` (None when
            no epoch ran); the loop puts it in eval mode.
        tolerance: key differences below this are noise (see `is_better`).
        clip_grad_norm: clip the gradient norm to this before each step (None: no clipping).
        stop_mid_epoch: check the time budget before every batch, not only before every
            epoch; an epoch cut short is still validated, then training stops.
    """

    build_model: Callable[[], nn.Module]
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    epoch_batches: Callable[[torch.Generator, int], Iterable[Batch]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    validate: Callable[[TrainedEpoch], tuple[dict[str, float], StoppingKey]]
    final_model: Callable[[dict[str, torch.Tensor] | None], nn.Module]
    tolerance: float
    clip_grad_norm: float | None = None
    stop_mid_epoch: bool = False


def is_better(key: StoppingKey, best: StoppingKey, tolerance: float) -> bool:
    """Early stopping on a validation score, with differences under ``tolerance`` as noise.

    ``key`` and ``best`` are ``(score, tie-breaker)``, e.g. ``(auc, -val_loss)`` or
    ``(dice, -train_loss)``. An epoch is better when its score beats the best by more than
    ``tolerance``, or ties with it (within ``tolerance``) with a higher tie-breaker: on a few
    dozen validation cases the score saturates and jumps by a case, while the loss still
    tells a settling model from a lucky epoch.
    """
    score, tie = key
    best_score, best_tie = best
    return score > best_score + tolerance or (score >= best_score - tolerance and tie > best_tie)


def lr_factor(config: LoopConfig, epoch: int) -> float:
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


def fit(
    config: LoopConfig,
    hooks: LoopHooks,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train with ``hooks`` and return the network of the best validation epoch.

    Each epoch's history row is ``epoch``, ``train_loss``, the validation metrics, ``lr``
    (of the last parameter group: the head when fine-tuning) and ``seconds`` (training wall
    time so far, including the time before a resume).

    Args:
        config: the shared loop settings (a task's config extends `LoopConfig`).
        hooks: the task's parts of the loop.
        on_epoch: called with each epoch's history row (after its state is saved).
        state_dir: where per-epoch resumable state is written (None: not written).
        resume: continue from ``state_dir``'s last epoch instead of starting afresh.

    Raises:
        InputError: ``resume`` without a readable saved state in ``state_dir``, or with
            other settings than the saved state was trained with.
    """
    fabric, memory_format = start_fabric(config)
    rank, world = fabric.global_rank, fabric.world_size
    ddp = world > 1
    if ddp and config.batch_size < world:
        raise InputError(
            f"batch size {config.batch_size} is smaller than the {world} ranks: the batch is "
            f"global and split between them, so give --batch-size {world} or more"
        )
    model = hooks.build_model()
    if config.bf16:
        norms_in_fp32(model)
    if config.channels_last:
        model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = hooks.make_optimizer(model)
    base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    generator = torch.Generator().manual_seed(config.seed)
    settings = config.model_dump_json()
    if ddp:
        loop, best_state = start_or_resume_on_all_ranks(
            fabric, state_dir, model, optimizer, generator, settings, resume
        )
    else:
        loop, best_state = start_or_resume(state_dir, model, optimizer, generator, settings, resume)
    if ddp:
        model, optimizer = setup_on_all_ranks(fabric, model, optimizer)
    else:
        model, optimizer = fabric.setup(model, optimizer)
    network: nn.Module = model.module
    # rank 0 validates alone, so not through DDP (`distributed.PrecisionOnly`)
    validation_model: nn.Module = PrecisionOnly(network, fabric) if ddp else model
    start = time.perf_counter() - (loop.history[-1]["seconds"] if loop.history else 0.0)
    budget_s = config.max_minutes * 60

    def out_of_time() -> bool:
        return time.perf_counter() - start > budget_s

    def on_every_rank(decide: Callable[[], bool]) -> bool:
        # a clock or a score read on one rank must not split the ranks into a hang
        return decided_on_rank_zero(fabric, decide) if ddp else decide()

    for epoch in range(loop.epoch + 1, config.max_epochs + 1):
        if on_every_rank(lambda: loop.stale >= config.patience or out_of_time()):
            break
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * lr_factor(config, epoch - 1)
        if ddp:
            seed_rank(config.seed, rank, epoch)
        model.train()
        losses: list[float] = []
        batches = iter(hooks.epoch_batches(generator, epoch))
        while True:
            # checked before the next batch is drawn, so a cut epoch draws nothing extra
            if hooks.stop_mid_epoch and losses and on_every_rank(out_of_time):
                break  # out of time: validate this shortened epoch and stop
            batch = next(batches, None)
            if batch is None:
                break
            x, y = batch
            part = weight = 1.0  # this rank's fraction of the batch; its loss's factor
            if ddp:
                shared = rank_share(batch, rank, world)
                if shared is None:
                    continue  # fewer samples than ranks: skipped on every rank
                (x, y), global_batch = shared
                part = len(y) / global_batch
                weight = share_weight(len(y), global_batch, world)
            if config.channels_last:
                x = x.contiguous(memory_format=memory_format)
            # under DDP, forward broadcasts buffers (batch-norm statistics) and backward
            # all-reduces the gradients: where a lost peer shows
            output = collective(fabric, partial(model, x)) if ddp else model(x)
            loss = hooks.loss(output, y)
            optimizer.zero_grad(set_to_none=True)
            if ddp:
                collective(fabric, partial(fabric.backward, loss * weight))
            else:
                fabric.backward(loss)
            if hooks.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), hooks.clip_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()) * part)
        if ddp:
            train_loss = _global_mean(fabric, losses, config.batch_size, world)
        else:
            train_loss = float(np.mean(losses))
        lr = float(optimizer.param_groups[-1]["lr"])
        trained = TrainedEpoch(epoch, train_loss, validation_model, network)
        if ddp:
            metrics, key = decided_on_rank_zero(fabric, partial(hooks.validate, trained))
        else:
            metrics, key = hooks.validate(trained)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **metrics,
            "lr": lr,
            "seconds": time.perf_counter() - start,
        }
        loop.history.append(row)
        loop.epoch = epoch
        if config.keep_last or is_better(key, loop.best_key, hooks.tolerance):
            loop.best_key, loop.best_epoch, loop.stale = key, epoch, 0
            best_state = copy.deepcopy(network.state_dict())
        else:
            loop.stale += 1
        if state_dir is not None and fabric.is_global_zero:
            save_state(state_dir, network, optimizer, generator, loop, best_state)
        if on_epoch:
            on_epoch(row)
    if ddp:
        # every rank leaves once rank 0 has saved the last epoch: the next stage of any
        # rank (a fold, a model, the task's own files) starts after the fit is on disk
        collective(fabric, fabric.barrier)
    final = hooks.final_model(best_state)
    seconds = loop.history[-1]["seconds"] if loop.history else 0.0
    return FitResult(final.eval(), loop.history, loop.best_epoch, seconds)


def _global_mean(fabric: Fabric, shares: list[float], batch_size: int, world: int) -> float:
    """The epoch's mean training loss over every rank's batches, as one process computes it.

    Each rank's entries are its batch losses times its fraction of the batch, so summed over
    ranks each batch gives the global batch's mean loss; every rank has the same number of
    batches.

    Raises:
        InputError: no batch had at least one sample per rank.
    """
    total = torch.tensor([sum(shares), float(len(shares))], dtype=torch.float64)
    summed = collective(fabric, lambda: fabric.all_reduce(total, reduce_op="sum"))
    batches = float(summed[1]) / world
    if not batches:
        raise InputError(
            f"no training batch of this epoch had {world} samples, one per rank (batch size "
            f"{batch_size}): use fewer ranks or more training cases"
        )
    return float(summed[0]) / batches
