"""A trained tagger in one object: text in, character spans (and tag probabilities) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medsight.text.models.tagger_inputs import Chunk, collate, encode_tokens
from medsight.text.models.tagger_network import TaggerNetwork, TaggerSizes
from medsight.text.models.tagger_tokens import Token, tags_to_spans, tokenize
from medsight.text.models.tagger_vocabulary import Vocabulary

Span = tuple[int, int, str]
#: chunks scored per forward pass
BATCH_CHUNKS = 16


@dataclass
class Tagger:
    """A network with the vocabulary, sizes and tag names it was trained with."""

    network: TaggerNetwork
    vocabulary: Vocabulary
    sizes: TaggerSizes
    tags: list[str]

    def chunks(self, tokens: Sequence[Token]) -> list[Chunk]:
        """The token chunks the network reads."""
        return encode_tokens(tokens, self.vocabulary, self.sizes.char_width, self.sizes.max_tokens)

    def tag_indices(self, chunks: Sequence[Chunk]) -> list[int]:
        """The best (Viterbi) tag index of every token of ``chunks``, in order."""
        out: list[int] = []
        was_training = self.network.training
        self.network.eval()
        with torch.inference_mode():
            for first in range(0, len(chunks), BATCH_CHUNKS):
                inputs, _ = collate(chunks[first : first + BATCH_CHUNKS])
                emissions = self.network(inputs)
                for path in self.network.crf.viterbi(emissions, inputs["mask"]):
                    out += path
        self.network.train(was_training)
        return out

    def spans(self, text: str) -> list[Span]:
        """The spans the tagger finds in ``text`` (character offsets)."""
        tokens = tokenize(text)
        if not tokens:
            return []
        indices = self.tag_indices(self.chunks(tokens))
        return tags_to_spans(tokens, [self.tags[i] for i in indices])

    def marginals(self, text: str) -> tuple[list[Token], np.ndarray]:
        """Tokens and their tag probabilities ``(n_tokens, n_tags)`` (CRF marginals)."""
        tokens = tokenize(text)
        rows: list[np.ndarray] = []
        self.network.eval()
        for chunk in self.chunks(tokens):
            inputs, _ = collate([chunk])
            with torch.inference_mode():
                emissions = self.network(inputs)
            rows.append(self.network.crf.marginals(emissions.clone(), inputs["mask"])[0].numpy())
        if not rows:
            return tokens, np.zeros((0, len(self.tags)), np.float32)
        return tokens, np.concatenate(rows)
