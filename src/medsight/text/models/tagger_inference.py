"""A trained tagger in one object: text in, character spans (and tag probabilities) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medsight.text.models.tagger_inputs import Chunk, collate, encode_tokens, window_owner
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
        """The windows the network reads: ``max_tokens`` long, overlapping by half."""
        size = self.sizes.max_tokens
        return encode_tokens(
            tokens, self.vocabulary, self.sizes.char_width, size, stride=max(size // 2, 1)
        )

    def tag_indices(self, chunks: Sequence[Chunk], n_tokens: int) -> list[int]:
        """The best (Viterbi) tag index of each of the note's ``n_tokens`` tokens.

        Each token takes its tag from the window in which it is most central
        (`window_owner`), so its tag has context on both sides.
        """
        paths: list[list[int]] = []
        was_training = self.network.training
        self.network.eval()
        with torch.inference_mode():
            for first in range(0, len(chunks), BATCH_CHUNKS):
                inputs, _ = collate(chunks[first : first + BATCH_CHUNKS])
                paths += self.network.crf.viterbi(self.network(inputs), inputs["mask"])
        self.network.train(was_training)
        owner = window_owner(chunks, n_tokens)
        return [paths[k][i - chunks[k].offset] for i, k in enumerate(owner.tolist())]

    def spans(self, text: str) -> list[Span]:
        """The spans the tagger finds in ``text`` (character offsets)."""
        tokens = tokenize(text)
        if not tokens:
            return []
        indices = self.tag_indices(self.chunks(tokens), len(tokens))
        return tags_to_spans(tokens, [self.tags[i] for i in indices])

    def marginals(self, text: str) -> tuple[list[Token], np.ndarray]:
        """Tokens and their tag probabilities ``(n_tokens, n_tags)`` (CRF marginals)."""
        tokens = tokenize(text)
        if not tokens:
            return tokens, np.zeros((0, len(self.tags)), np.float32)
        chunks = self.chunks(tokens)
        rows: list[np.ndarray] = []
        self.network.eval()
        for chunk in chunks:
            inputs, _ = collate([chunk])
            with torch.inference_mode():
                emissions = self.network(inputs)
            rows.append(self.network.crf.marginals(emissions.clone(), inputs["mask"])[0].numpy())
        owner = window_owner(chunks, len(tokens))
        return tokens, np.stack(
            [rows[k][i - chunks[k].offset] for i, k in enumerate(owner.tolist())]
        )
