"""A document classifier's hooks into the training loop (`medsight.train.loop`): `fit_text_model`.

AdamW; the loss is the mean over outputs of each output's class-weighted cross-entropy
(unlabelled notes of an output, target -100, are ignored by that output only); batches are
length-bucketed (notes of similar length together, so little padding is computed) and drawn
from the loop's generator; gradient clipping; early stopping on the tuning macro-F1 (the
mean over outputs of `macro_f1`, which averages the classes with `MIN_MACRO_NOTES`+ tuning
notes, as the evaluation's headline does), ties within ``f1_tolerance`` going to the lower
tuning loss. The loop itself (Fabric, resumable state, schedule, patience, time budget) is
the engine's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medsight.text.models.document_classifier import (
    DocumentClassifier,
    TextModelSpec,
    split_logits,
)
from medsight.text.models.subword_tokenizer import pad_ids
from medsight.text.tasks.classify_config import TextClassifyConfig
from medsight.train.loop import Batch, FitResult, LoopHooks, StoppingKey, TrainedEpoch, fit

#: batches sorted together by length: this many batches' notes per bucket
BUCKET_BATCHES = 20
PREDICT_BATCH = 64
IGNORE = -100
#: a class counts in a macro-F1 with at least this many labelled notes
MIN_MACRO_NOTES = 5


def macro_f1(y: np.ndarray, probs: np.ndarray) -> float | None:
    """Macro-F1 of the argmax over the classes with `MIN_MACRO_NOTES`+ labelled notes.

    Every class present counts when none has that many. A class with one or two notes would
    swing the mean by its single F1 (and the evaluation reports the same average). None
    when fewer than two classes count: such an output stays out of the mean over outputs.
    """
    keep = y >= 0
    y, predicted = y[keep], probs[keep].argmax(axis=1)
    classes, support = np.unique(y, return_counts=True)
    if classes.size == 0:
        return None
    counted = classes[support >= MIN_MACRO_NOTES] if (support >= MIN_MACRO_NOTES).any() else classes
    if counted.size < 2:
        return None  # one class: an F1 of "everything is that class", not a macro average
    scores = []
    for c in counted:
        tp = float(np.sum((predicted == c) & (y == c)))
        fp = float(np.sum((predicted == c) & (y != c)))
        fn = float(np.sum((predicted != c) & (y == c)))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def class_weights(targets: np.ndarray, sizes: Sequence[int], power: float) -> list[torch.Tensor]:
    """Per output, the loss weight of each class from its training counts (see the config)."""
    weights = []
    for j, k in enumerate(sizes):
        y = targets[:, j]
        counts = np.bincount(y[y >= 0], minlength=k).astype(np.float64)
        seen = counts > 0
        w = np.ones(k)
        if seen.any():
            w[seen] = (counts[seen].sum() / (seen.sum() * counts[seen])) ** power
        weights.append(torch.tensor(w, dtype=torch.float32))
    return weights


def bucketed_batches(
    lengths: np.ndarray, rows: np.ndarray, batch_size: int, generator: torch.Generator
) -> list[np.ndarray]:
    """Shuffled batches of ``rows``: a random order, sorted by length within buckets."""
    order = rows[torch.randperm(len(rows), generator=generator).numpy()]
    batches = []
    bucket = batch_size * BUCKET_BATCHES
    for start in range(0, len(order), bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).numpy()
    return [batches[i] for i in shuffle]


def predict_probabilities(
    model: nn.Module,
    ids: Sequence[np.ndarray],
    rows: np.ndarray,
    sizes: Sequence[int],
    batch_size: int = PREDICT_BATCH,
) -> list[np.ndarray]:
    """Per output, softmax probabilities ``(len(rows), k)`` of ``ids[rows]`` (in that order)."""
    rows = np.asarray(rows, dtype=np.int64)
    out = [np.zeros((len(rows), k), np.float64) for k in sizes]
    lengths = np.asarray([len(ids[r]) for r in rows])
    order = np.argsort(lengths, kind="stable")
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            batch = torch.from_numpy(pad_ids([ids[r] for r in rows[positions]]))
            logits = model(batch).float()
            for j, part in enumerate(split_logits(logits, list(sizes))):
                out[j][positions] = part.softmax(dim=1).double().numpy()
    model.train(was_training)
    return out


def fit_text_model(
    ids: Sequence[np.ndarray],
    targets: np.ndarray,
    train: np.ndarray,
    tuning: np.ndarray,
    spec: TextModelSpec,
    config: TextClassifyConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
    prepare_model: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Train ``config.model_name`` on ``ids[train]``, stopping on ``ids[tuning]``.

    Args:
        ids: every note's token ids.
        targets: ``(notes, outputs)`` class indices (-100: unlabelled).
        train, tuning: note positions of the two splits.
        spec: the network's sizes.
        config: training settings.
        on_epoch: called with each epoch's history row (after its state is saved).
        state_dir: where per-epoch resumable state is written (None: not written).
        resume: continue from ``state_dir``'s last epoch.
        prepare_model: called on the new model before training (``--init`` weights).

    Raises:
        InputError: ``resume`` without a readable saved state, or with other settings.
    """
    sizes = list(spec.output_sizes)
    train = np.asarray(train, dtype=np.int64)
    tuning = np.asarray(tuning, dtype=np.int64)
    lengths = np.asarray([len(x) for x in ids])
    weights = class_weights(targets[train], sizes, config.class_weight_power)

    def new_model() -> nn.Module:
        model = DocumentClassifier(config.model_name, spec)
        if prepare_model is not None:
            prepare_model(model)
        return model

    def epoch_batches(generator: torch.Generator, epoch: int) -> Iterator[Batch]:
        for rows in bucketed_batches(lengths, train, config.batch_size, generator):
            x = torch.from_numpy(pad_ids([ids[r] for r in rows]))
            yield x, torch.from_numpy(targets[rows])

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = output.new_zeros(())
        for j, logits in enumerate(split_logits(output.float(), sizes)):
            y = target[:, j]
            labelled = y != IGNORE
            if not bool(labelled.any()):
                continue
            w = weights[j].to(logits.device)
            summed = F.cross_entropy(logits, y, weight=w, ignore_index=IGNORE, reduction="sum")
            total = total + summed / w[y[labelled]].sum()
        return total / len(sizes)

    y_tuning = targets[tuning]

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], StoppingKey]:
        probs = predict_probabilities(trained.model, ids, tuning, sizes)
        f1s, losses = [], []
        for j, p in enumerate(probs):
            y = y_tuning[:, j]
            keep = y >= 0
            if keep.any():
                losses.append(float(-np.log(np.maximum(p[keep, y[keep]], 1e-12)).mean()))
            f1 = macro_f1(y, p)
            if f1 is not None:
                f1s.append(f1)
        val_f1 = float(np.mean(f1s)) if f1s else 0.0
        val_loss = float(np.mean(losses)) if losses else 0.0
        return {"val_loss": val_loss, "val_macro_f1": val_f1}, (val_f1, -val_loss)

    def final_model(best_state: dict[str, torch.Tensor] | None) -> nn.Module:
        model = DocumentClassifier(config.model_name, spec)
        if best_state is not None:
            model.load_state_dict(best_state)
        return model

    hooks = LoopHooks(
        build_model=new_model,
        make_optimizer=lambda model: torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        ),
        epoch_batches=epoch_batches,
        loss=loss,
        validate=validate,
        final_model=final_model,
        tolerance=config.f1_tolerance,
        clip_grad_norm=config.clip_grad_norm or None,
    )
    return fit(config, hooks, on_epoch=on_epoch, state_dir=state_dir, resume=resume)
