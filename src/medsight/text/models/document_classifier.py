"""`DocumentClassifier`: token ids -> an encoder -> one classification head per output.

The network returns every output's logits side by side, ``(N, sum of class counts)``; the
run's contract records each output's classes in that order, so `split_logits` cuts them
apart again (one tensor out keeps the loss, ONNX export and serving simple). The sizes are a
`TextModelSpec` (in the run's ``plan.json``). ``embed`` and ``forward_embedded`` expose the
embedding step separately, so integrated gradients can interpolate in embedding space.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from medsight.text.models.document_encoders import create_encoder
from medsight.text.models.subword_tokenizer import PAD_ID


class TextModelSpec(BaseModel):
    """Sizes of a document classifier (data-derived ones come from the plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(ge=3)
    #: the longest note the network reads, in subword tokens (longer ones are cut)
    max_tokens: int = Field(ge=1)
    #: classes per output, in the contract's output order
    output_sizes: list[int]
    embed_dim: int = Field(default=64, ge=4)
    hidden_dim: int = Field(default=64, ge=2)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.2, ge=0, lt=1)


class DocumentClassifier(nn.Module):
    """Embedding, encoder ``name`` and one linear head per output (module docstring)."""

    def __init__(self, name: str, spec: TextModelSpec):
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.embed_dim, padding_idx=PAD_ID)
        # small start: Adam moves each weight by about the learning rate per step, so unit-
        # variance embeddings (PyTorch's default) take hundreds of steps to reorganise; on a
        # few hundred notes that is the whole training run
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        self.encoder = create_encoder(
            name,
            spec.embed_dim,
            spec.hidden_dim,
            spec.max_tokens,
            spec.layers,
            spec.heads,
            spec.dropout,
        )
        self.dropout = nn.Dropout(spec.dropout)
        features = int(self.encoder.out_features)  # type: ignore[arg-type]
        self.heads = nn.ModuleList(nn.Linear(features, k) for k in spec.output_sizes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(N, L, D)`` of ids ``(N, L)``."""
        return self.embedding(ids)

    def forward_embedded(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Every output's logits from embeddings and the real-token mask."""
        features = self.dropout(self.encoder(embedded, mask))
        return torch.cat([head(features) for head in self.heads], dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids), ids != PAD_ID)


def split_logits(logits: torch.Tensor, output_sizes: list[int]) -> list[torch.Tensor]:
    """Each output's logits ``(N, k_i)`` from the network's concatenated ``(N, sum k)``."""
    return list(torch.split(logits, output_sizes, dim=1))
