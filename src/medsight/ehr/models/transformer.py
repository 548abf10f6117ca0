"""A Transformer encoder over a patient's events, with a summary token from age and sex.

Position is the event's time (inside its embedding: log hours before the prediction and
since the previous event), not its index, so appending padding or shifting a history does
not change what a real event means. The first token is the static embedding; its output
is the patient summary (always defined, even without events). Padded positions are masked
out of attention (key padding mask).
"""

from __future__ import annotations

import torch
from torch import nn

from medsight.ehr.models.embedding import Batch, EventEmbedding, StaticEmbedding
from medsight.ehr.models.registration import register_ehr_model
from medsight.ehr.models.spec import ModelSpec


@register_ehr_model("transformer")
class TransformerModel(nn.Module):
    """Pre-norm Transformer encoder; the summary token's output goes to the head."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.embedding = EventEmbedding(spec)
        self.static = StaticEmbedding(spec)
        layer = nn.TransformerEncoderLayer(
            spec.embed_dim,
            spec.heads,
            dim_feedforward=spec.hidden_dim * 2,
            dropout=spec.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # no nested-tensor fast path: its results differ in the last bits with padding
        self.encoder = nn.TransformerEncoder(
            layer, spec.transformer_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(spec.embed_dim)
        self.head = nn.Linear(spec.embed_dim, 1)

    def embed(self, batch: Batch) -> torch.Tensor:
        """Event embeddings ``(N, L, D)``."""
        return self.embedding(batch)

    def forward_embedded(self, embeddings: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Logits ``(N,)`` from event embeddings."""
        static = self.static(batch).unsqueeze(1)
        tokens = torch.cat([static, embeddings], dim=1)
        keep = torch.ones_like(batch["mask"][:, :1])
        padding = ~torch.cat([keep, batch["mask"]], dim=1)
        encoded = self.encoder(tokens, src_key_padding_mask=padding)
        return self.head(self.norm(encoded[:, 0])).squeeze(-1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.forward_embedded(self.embed(batch), batch)
