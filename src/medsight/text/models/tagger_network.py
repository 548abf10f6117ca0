"""The tagger network: token features -> contextual encoder -> per-tag emissions, plus a CRF.

Token features are a word embedding (training vocabulary), a word-shape embedding and a
character CNN (max-pooled over each token's characters), so a name or number never seen in
training is still recognisable by its shape and spelling. The encoder is a BiLSTM
(``bilstm-crf``, the i2b2 de-identification and concept-extraction workhorse) or a small
Transformer encoder with learned positions (``transformer-crf``). ``forward`` returns the
emissions ``(N, T, K)`` only, so the exported ONNX graph is the emission network; decoding
(`CRF.viterbi`) stays in Python.

Inputs are a dict of ``words (N, T)``, ``shapes (N, T)``, ``chars (N, T, C)`` (int64, 0 =
padding) and ``mask (N, T)`` (bool, True on real tokens, a prefix of each row).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medsight.text.models.tagger_crf import CRF
from medsight.text.models.tagger_sizes import NETWORKS, TaggerSizes


class TaggerNetwork(nn.Module):
    """Emission network + CRF (see the module docstring)."""

    def __init__(
        self,
        network: str,
        sizes: TaggerSizes,
        tags: Sequence[str],
        n_words: int,
        n_shapes: int,
        n_chars: int,
    ) -> None:
        super().__init__()
        if network not in NETWORKS:
            raise ValueError(f"unknown tagger network {network!r}; choose {', '.join(NETWORKS)}")
        self.network = network
        self.sizes = sizes
        self.words = nn.Embedding(n_words, sizes.word_dim, padding_idx=0)
        self.shapes = nn.Embedding(n_shapes, sizes.shape_dim, padding_idx=0)
        self.chars = nn.Embedding(n_chars, sizes.char_dim, padding_idx=0)
        self.char_cnn = nn.Conv1d(sizes.char_dim, sizes.char_filters, kernel_size=3, padding=1)
        features = sizes.word_dim + sizes.shape_dim + sizes.char_filters
        self.dropout = nn.Dropout(sizes.dropout)
        self.encoder: nn.Module
        if network == "bilstm-crf":
            self.encoder = nn.LSTM(
                features,
                sizes.hidden_dim // 2,
                num_layers=sizes.layers,
                batch_first=True,
                bidirectional=True,
                dropout=sizes.dropout if sizes.layers > 1 else 0.0,
            )
        else:
            self.project = nn.Linear(features, sizes.hidden_dim)
            self.positions = nn.Embedding(sizes.max_tokens, sizes.hidden_dim)
            layer = nn.TransformerEncoderLayer(
                sizes.hidden_dim,
                sizes.heads,
                dim_feedforward=2 * sizes.hidden_dim,
                dropout=sizes.dropout,
                batch_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, sizes.layers, enable_nested_tensor=False)
        self.emit = nn.Linear(sizes.hidden_dim, len(tags))
        self.crf = CRF(tags)

    def token_features(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Word, shape and character features ``(N, T, F)``."""
        chars = inputs["chars"]
        n, length, width = chars.shape
        embedded = self.chars(chars.reshape(n * length, width)).transpose(1, 2)
        pooled = torch.relu(self.char_cnn(embedded)).amax(dim=2).reshape(n, length, -1)
        return torch.cat([self.words(inputs["words"]), self.shapes(inputs["shapes"]), pooled], 2)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Emissions ``(N, T, K)`` (padding positions hold scores that decoding ignores)."""
        mask = inputs["mask"]
        features = self.dropout(self.token_features(inputs))
        if self.network == "bilstm-crf":
            encoded = self._bilstm(features, mask)
        else:
            positions = torch.arange(features.shape[1], device=features.device)
            hidden = self.project(features) + self.positions(positions)
            encoded = self.encoder(hidden, src_key_padding_mask=~mask)
        return self.emit(self.dropout(encoded))

    def _bilstm(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or bool(mask.all()):
            # no padding (the exported graph takes one chunk at a time): nothing to pack
            encoded, _ = self.encoder(features)
            return encoded
        # packed, so the backward direction starts at each row's last real token
        lengths = mask.long().sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            features, lengths, batch_first=True, enforce_sorted=False
        )
        encoded, _ = self.encoder(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(
            encoded, batch_first=True, total_length=features.shape[1]
        )
        return padded
