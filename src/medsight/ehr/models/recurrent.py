"""GRU and LSTM over a patient's events (oldest first): the state at the last real event
and the mean state over the real events, with age and sex, go to the head.

Histories are padded at the end; a recurrent network is causal, so the state at a sample's
last real event is the same whatever padding follows it (no packing needed: batches are
bucketed by length, so there is little padding to waste time on). The initial state comes
from the static embedding (age, sex), so a sample without events still has a summary. The
mean state carries the whole history (trends over years) that the last state, dominated by
the most recent events, may forget.
"""

from __future__ import annotations

import torch
from torch import nn

from medsight.ehr.models.embedding import (
    Batch,
    EventEmbedding,
    StaticEmbedding,
    last_index,
    masked_mean,
)
from medsight.ehr.models.registration import register_ehr_model
from medsight.ehr.models.spec import ModelSpec


class _Recurrent(nn.Module):
    cell: type[nn.GRU] | type[nn.LSTM] = nn.GRU

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.embedding = EventEmbedding(spec)
        self.static = StaticEmbedding(spec)
        self.rnn = self.cell(
            spec.embed_dim,
            spec.hidden_dim,
            num_layers=spec.layers,
            batch_first=True,
            dropout=spec.dropout if spec.layers > 1 else 0.0,
        )
        self.initial = nn.Linear(spec.embed_dim, spec.hidden_dim * spec.layers)
        self.layers, self.hidden = spec.layers, spec.hidden_dim
        self.head = nn.Sequential(
            nn.Linear(2 * spec.hidden_dim + spec.embed_dim, spec.hidden_dim),
            nn.GELU(),
            nn.Dropout(spec.dropout),
            nn.Linear(spec.hidden_dim, 1),
        )

    def embed(self, batch: Batch) -> torch.Tensor:
        """Event embeddings ``(N, L, D)``."""
        return self.embedding(batch)

    def forward_embedded(self, embeddings: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Logits ``(N,)`` from event embeddings."""
        static = self.static(batch)
        n = static.shape[0]
        h0 = torch.tanh(self.initial(static)).view(n, self.layers, self.hidden).transpose(0, 1)
        h0 = h0.contiguous()
        state = (h0, torch.zeros_like(h0)) if self.cell is nn.LSTM else h0
        outputs, _ = self.rnn(embeddings, state)
        last = last_index(batch["mask"])
        picked = outputs[torch.arange(n), last.clamp_min(0)]
        summary = torch.where((last >= 0).unsqueeze(-1), picked, h0[-1])
        mean = masked_mean(outputs, batch["mask"])
        return self.head(torch.cat([summary, mean, static], dim=-1)).squeeze(-1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.forward_embedded(self.embed(batch), batch)


@register_ehr_model("gru")
class GRUModel(_Recurrent):
    """A GRU over event embeddings (time deltas are part of each event's embedding)."""

    cell = nn.GRU


@register_ehr_model("lstm")
class LSTMModel(_Recurrent):
    """An LSTM over event embeddings."""

    cell = nn.LSTM
