"""Document encoders: token embeddings ``(N, L, D)`` + mask ``(N, L)`` -> one vector per note.

Three families, registered by name (``cnn``, ``bilstm``, ``transformer``), all with the same
surface: ``encoder(embedded, mask) -> (N, out_features)`` and an ``out_features`` attribute,
so the classifier heads, integrated gradients (over the embeddings) and ONNX export treat
them alike. ``mask`` is True at real tokens; padding never reaches a pooled vector.

- ``cnn``: parallel 1-D convolutions of widths 3, 5 and 7 (n-gram detectors), max-pooled
  over the note (Kim 2014).
- ``bilstm``: a bidirectional LSTM, max- and mean-pooled over the real tokens (each
  direction reads only the note's own tokens, so padding never changes a note's vector).
- ``transformer``: learnt positions and a few pre-norm self-attention layers, mean-pooled.
  The layer is written here (a dozen lines) rather than taken from ``nn.TransformerEncoder``
  because that module switches to a fused "fast path" kernel in eval mode that the ONNX
  exporter cannot trace, and the run exports its primary model to ONNX.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from medsight.errors import InputError

#: a padded position's value before max pooling (finite: ONNX and bf16 dislike -inf)
_MASKED = -1e4


def masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the real positions of ``hidden`` ``(N, L, F)`` -> ``(N, F)``."""
    return hidden.masked_fill(~mask.unsqueeze(-1), _MASKED).amax(dim=1)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real positions of ``hidden`` ``(N, L, F)`` -> ``(N, F)``."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class CnnEncoder(nn.Module):
    """Convolutions of several widths over the tokens, max-pooled (see the module docstring)."""

    def __init__(self, embed_dim: int, hidden_dim: int, widths: tuple[int, ...] = (3, 5, 7)):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(embed_dim, hidden_dim, w, padding=w // 2) for w in widths
        )
        self.out_features = hidden_dim * len(widths)

    def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = embedded.transpose(1, 2)
        pooled = [masked_max(torch.relu(conv(x)).transpose(1, 2), mask) for conv in self.convs]
        return torch.cat(pooled, dim=1)


class BiLstmEncoder(nn.Module):
    """A bidirectional LSTM, max- and mean-pooled over the real tokens.

    Two one-directional LSTMs rather than ``bidirectional=True``: the backward one reads each
    note reversed within its own length (a gather), so it starts at the note's last real
    token, not at the batch's padding, and a note gets the same vector in any batch. Packed
    sequences would do the same but do not export to ONNX.
    """

    def __init__(self, embed_dim: int, hidden_dim: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.backward_lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.out_features = 4 * hidden_dim

    def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1, keepdim=True)
        positions = torch.arange(embedded.shape[1], device=embedded.device).unsqueeze(0)
        # position i of the reversed note is position length-1-i (padding maps onto itself)
        reverse = torch.where(positions < lengths, lengths - 1 - positions, positions)
        index = reverse.unsqueeze(-1).expand(-1, -1, embedded.shape[2])
        ahead, _ = self.forward_lstm(embedded)
        behind, _ = self.backward_lstm(torch.gather(embedded, 1, index))
        behind = torch.gather(behind, 1, reverse.unsqueeze(-1).expand(-1, -1, behind.shape[2]))
        hidden = torch.cat([ahead, behind], dim=2)
        return torch.cat([masked_max(hidden, mask), masked_mean(hidden, mask)], dim=1)


class SelfAttentionLayer(nn.Module):
    """One pre-norm transformer layer (multi-head self-attention + feed-forward)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise InputError(f"transformer: width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, length, self.heads, dim // self.heads).transpose(1, 2)

        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim // self.heads)
        scores = scores.masked_fill(~mask[:, None, None, :], _MASKED)
        attended = (scores.softmax(dim=-1) @ split(v)).transpose(1, 2).reshape(n, length, dim)
        x = x + self.drop(self.proj(attended))
        return x + self.drop(self.ff(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """Learnt positions + `SelfAttentionLayer` s, mean-pooled over the real tokens."""

    def __init__(self, embed_dim: int, max_tokens: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.positions = nn.Parameter(torch.zeros(max_tokens, embed_dim))
        nn.init.normal_(self.positions, std=0.02)
        self.layers = nn.ModuleList(
            SelfAttentionLayer(embed_dim, heads, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.out_features = embed_dim

    def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = embedded + self.positions[: embedded.shape[1]].unsqueeze(0)
        for layer in self.layers:
            x = layer(x, mask)
        return masked_mean(self.norm(x), mask)


EncoderFactory = Callable[[int, int, int, int, int, float], nn.Module]

#: name -> factory(embed_dim, hidden_dim, max_tokens, layers, heads, dropout)
ENCODERS: dict[str, EncoderFactory] = {
    "cnn": lambda e, h, t, layers, heads, d: CnnEncoder(e, h),
    "bilstm": lambda e, h, t, layers, heads, d: BiLstmEncoder(e, h),
    "transformer": lambda e, h, t, layers, heads, d: TransformerEncoder(e, t, layers, heads, d),
}


def create_encoder(
    name: str,
    embed_dim: int,
    hidden_dim: int,
    max_tokens: int,
    layers: int,
    heads: int,
    dropout: float,
) -> nn.Module:
    """The encoder registered as ``name``.

    Raises:
        InputError: no encoder has that name.
    """
    if name not in ENCODERS:
        raise InputError(f"--model {name}: unknown text encoder; choose from {', '.join(ENCODERS)}")
    return ENCODERS[name](embed_dim, hidden_dim, max_tokens, layers, heads, dropout)
