"""Integrated gradients over event embeddings: how much each past event moved the risk logit.

Every EHR sequence model exposes ``embed(batch) -> (N, L, D)`` (one embedding per event:
code, value, time) and ``forward_embedded(embeddings, batch) -> (N,)`` logits, so this works
for GRU, LSTM, Transformer and RETAIN alike. For sample ``i`` and event ``j`` (Sundararajan
et al. 2017, "Axiomatic Attribution for Deep Networks"):

    IG_ij = sum_d e_ijd * mean_k dF/de_ijd (baseline + a_k (e - baseline))

with the baseline all-zero embeddings at the real events, and the path integral taken by
the midpoint rule at ``a_k = (k + 0.5) / steps``. Padding positions (``mask`` False) are
held at their own embedding along the whole path, so they get exactly zero attribution and
*completeness* holds over the real events: ``sum_j IG_ij ~= F(e_i) - F(baseline_i)``, the
logit of the record minus the logit of the same record with every event's content removed
(static features such as age and sex stay). A positive attribution raised the risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
from torch import Tensor


class EmbeddedModel(Protocol):
    """What integrated gradients needs of a sequence model (see the module docstring)."""

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Event embeddings, shape ``(N, L, D)``."""
        ...

    def forward_embedded(self, embeddings: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """Logits, shape ``(N,)``, from event embeddings and the batch's other inputs."""
        ...


def event_attributions(
    model: EmbeddedModel, batch: Mapping[str, Tensor], steps: int = 32
) -> Tensor:
    """Integrated-gradients attribution of the risk logit to each event.

    Args:
        model: A sequence model with ``embed`` and ``forward_embedded`` (in eval mode, so
            dropout does not make the path noisy).
        batch: The model's input dict; ``mask`` (N, L) bool marks real events.
        steps: Points on the straight path from the baseline to the embeddings.

    Returns:
        Attributions, shape ``(N, L)``, float32 on the batch's device; 0 at padding.

    Raises:
        ValueError: If ``steps`` is not positive or the embeddings are not (N, L, D).
    """
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    with torch.no_grad():
        embeddings = model.embed(batch).detach()
    if embeddings.dim() != 3:
        raise ValueError(f"embed() must return (N, L, D), got {tuple(embeddings.shape)}")
    mask = batch["mask"].to(embeddings.device).bool()
    real = mask.unsqueeze(-1).to(embeddings.dtype)
    total = torch.zeros_like(embeddings)
    with torch.enable_grad():
        for k in range(steps):
            scale = (k + 0.5) / steps
            # real events scaled along the path; padding held at its own embedding
            point = (embeddings * (real * scale + (1 - real))).requires_grad_(True)
            logits = model.forward_embedded(point, batch)
            (grad,) = torch.autograd.grad(logits.sum(), point)
            total += grad
    attributions = (embeddings * total / steps).sum(dim=-1) * mask
    return attributions.float().detach()


def baseline_logits(model: EmbeddedModel, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The logits of the records and of the IG baseline (real events' embeddings zeroed).

    ``event_attributions(...).sum(1)`` approximates their difference (completeness); the
    explanation reports both so a reader can see how much the events, rather than the
    static features, account for.

    Returns:
        ``(logits, baseline)``, each of shape ``(N,)``.
    """
    with torch.no_grad():
        embeddings = model.embed(batch)
        real = batch["mask"].to(embeddings.device).bool().unsqueeze(-1).to(embeddings.dtype)
        logits = model.forward_embedded(embeddings, batch)
        baseline = model.forward_embedded(embeddings * (1 - real), batch)
    return logits.float(), baseline.float()
