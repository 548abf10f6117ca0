"""RETAIN (Choi et al. 2016): reverse-time attention that says how much each event counted.

Two GRUs read the events newest first. One gives a scalar attention ``alpha`` per event
(softmax over the real events), the other a vector gate ``beta`` per event (tanh); the
patient's context is ``sum_i alpha_i * beta_i * v_i`` over event embeddings ``v_i``, and the
logit is linear in it (plus a static term from age and sex). So an event's contribution to
the logit is exactly ``alpha_i * w . (beta_i * v_i)`` (`RetainModel.contributions`).

Reversal is per sample (only the real events are reversed; padding stays at the end), so
padding never reaches a real event's state.
"""

from __future__ import annotations

import torch
from torch import nn

from medsight.ehr.models.embedding import Batch, EventEmbedding, StaticEmbedding
from medsight.ehr.models.registration import register_ehr_model
from medsight.ehr.models.spec import ModelSpec

#: attention logit of padded positions (exp underflows to exactly 0 in float32)
MASKED = -1e9


def reverse_real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reverse each sample's real positions of ``x`` (N, L, ...), leaving padding in place.

    Applying it twice gives ``x`` back.
    """
    n, length = mask.shape
    lengths = mask.long().sum(1, keepdim=True)
    positions = torch.arange(length, device=x.device).expand(n, length)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    if x.dim() == 3:
        index = index.unsqueeze(-1).expand_as(x)
    return torch.gather(x, 1, index)


@register_ehr_model("retain")
class RetainModel(nn.Module):
    """Reverse-time attention over event embeddings (see the module docstring)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.embedding = EventEmbedding(spec)
        self.static = StaticEmbedding(spec)
        self.alpha_rnn = nn.GRU(d, spec.hidden_dim, num_layers=spec.layers, batch_first=True)
        self.beta_rnn = nn.GRU(d, spec.hidden_dim, num_layers=spec.layers, batch_first=True)
        self.alpha = nn.Linear(spec.hidden_dim, 1)
        self.beta = nn.Linear(spec.hidden_dim, d)
        self.dropout = nn.Dropout(spec.dropout)
        self.output = nn.Linear(d, 1)
        self.static_output = nn.Linear(d, 1)

    def embed(self, batch: Batch) -> torch.Tensor:
        """Event embeddings ``(N, L, D)``."""
        return self.embedding(batch)

    def _attention(
        self, embeddings: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        reversed_ = reverse_real(embeddings, mask)
        g, _ = self.alpha_rnn(reversed_)
        h, _ = self.beta_rnn(reversed_)
        g, h = reverse_real(g, mask), reverse_real(h, mask)
        scores = self.alpha(g).squeeze(-1).masked_fill(~mask, MASKED)
        alpha = torch.softmax(scores, dim=1) * mask.to(embeddings.dtype)
        beta = torch.tanh(self.beta(h))
        return alpha, beta

    def contributions(self, batch: Batch) -> torch.Tensor:
        """Each event's additive share of the logit ``(N, L)`` (0 at padding)."""
        embeddings = self.embed(batch)
        alpha, beta = self._attention(embeddings, batch["mask"])
        weighted = self.output.weight.squeeze(0) * beta * embeddings
        return alpha * weighted.sum(-1)

    def forward_embedded(self, embeddings: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Logits ``(N,)`` from event embeddings."""
        alpha, beta = self._attention(embeddings, batch["mask"])
        context = (alpha.unsqueeze(-1) * beta * embeddings).sum(1)
        logit = self.output(self.dropout(context)) + self.static_output(self.static(batch))
        return logit.squeeze(-1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.forward_embedded(self.embed(batch), batch)
