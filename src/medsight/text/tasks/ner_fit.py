"""A tagger's hooks into the one training loop (`medsight.train.loop`): `fit_tagger`.

AdamW on the CRF's negative log-likelihood per token, chunks batched by similar length
(shuffled by the loop's generator, so the same seed gives the same batches), word dropout,
gradient clipping, and early stopping on the tuning split's exact entity F1 (ties within
``f1_tolerance`` go to the lower training loss). Fabric, resumable state, the schedule,
patience and the time budget are the loop's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from medsight.text.models.tagger_inference import Tagger
from medsight.text.models.tagger_inputs import Chunk, collate
from medsight.text.models.tagger_network import TaggerNetwork
from medsight.text.models.tagger_vocabulary import Vocabulary
from medsight.text.tasks.ner_config import NerTrainConfig
from medsight.train.loop import Batch, FitResult, LoopHooks, StoppingKey, TrainedEpoch, fit

Span = tuple[int, int, str]


def length_batches(
    chunks: Sequence[Chunk], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """Chunk indices in batches of similar length, in a seeded random order.

    Chunks are shuffled, sorted by length within windows of 20 batches (little padding),
    then the batches are shuffled.
    """
    order = torch.randperm(len(chunks), generator=generator).tolist()
    window = batch_size * 20
    batches: list[list[int]] = []
    for first in range(0, len(order), window):
        part = sorted(order[first : first + window], key=lambda i: len(chunks[i].words))
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def exact_f1(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> float:
    """Micro F1 of exact (start, end, type) matches over notes (0 when nothing on either side)."""
    tp = sum(len(set(g) & set(p)) for g, p in zip(gold, predicted, strict=True))
    n_gold = sum(len(g) for g in gold)
    n_pred = sum(len(p) for p in predicted)
    return 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 0.0


def fit_tagger(
    make_network: Callable[[], TaggerNetwork],
    vocabulary: Vocabulary,
    tags: list[str],
    train: Sequence[Chunk],
    tuning_texts: Sequence[str],
    tuning_spans: Sequence[Sequence[Span]],
    config: NerTrainConfig,
    word_dropout: float,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
    prepare_model: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Train a new network on the ``train`` chunks, stopping on the tuning notes.

    Args:
        make_network: a new, untrained network.
        vocabulary, tags: what the network reads and writes (for scoring the tuning notes).
        train: the training chunks (with gold tag indices).
        tuning_texts, tuning_spans: the tuning notes and their gold spans.
        config: training settings.
        word_dropout: share of words replaced by ``<unk>`` in training batches.
        on_epoch: called with each epoch's history row.
        state_dir: where per-epoch resumable state is written.
        resume: continue from ``state_dir``'s last epoch.
        prepare_model: called on the new network before training (``--init`` weights).

    Raises:
        InputError: ``resume`` without a readable saved state, or with other settings.
    """
    built: list[TaggerNetwork] = []

    def build_model() -> nn.Module:
        network = make_network()
        if prepare_model is not None:
            prepare_model(network)
        built.append(network)
        return network

    def epoch_batches(generator: torch.Generator, epoch: int) -> Iterator[Batch]:
        for batch in length_batches(train, config.batch_size, generator):
            yield collate([train[i] for i in batch], word_dropout, generator)

    def loss(emissions: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        # the CRF's scores are parameters of the same network the loop trains: the loss is
        # the sequence likelihood of its emissions under them, per real token
        tokens = (tags >= 0).sum().clamp(min=1)
        return built[-1].crf.neg_log_likelihood(emissions.float(), tags) / tokens

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], StoppingKey]:
        network = trained.network
        assert isinstance(network, TaggerNetwork)
        scoring = Tagger(network, vocabulary, network.sizes, tags)
        predicted = [scoring.spans(text) for text in tuning_texts]
        f1 = exact_f1(tuning_spans, predicted)
        return {"val_f1": f1}, (f1, -trained.train_loss)

    def final_model(best_state: dict[str, torch.Tensor] | None) -> nn.Module:
        network = make_network()
        if best_state is not None:
            network.load_state_dict(best_state)
        return network

    hooks = LoopHooks(
        build_model=build_model,
        make_optimizer=lambda model: torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        epoch_batches=epoch_batches,
        loss=loss,
        validate=validate,
        final_model=final_model,
        tolerance=config.f1_tolerance,
        clip_grad_norm=config.clip_grad_norm or None,
    )
    return fit(config, hooks, on_epoch=on_epoch, state_dir=state_dir, resume=resume)
