"""Notes to tagger inputs: tokens -> index arrays in chunks of at most ``max_tokens``, batched.

Training reads a long note as consecutive chunks; prediction reads it in windows that overlap
by half (``stride``), and each token takes its tag from the window in which it lies most
central, so no span is cut at a chunk edge (`window_owner`). Batches pad at the end of each
row (the network's and the CRF's mask convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medsight.text.models.tagger_tokens import Token, spans_to_tags
from medsight.text.models.tagger_vocabulary import Vocabulary

Span = tuple[int, int, str]


@dataclass(frozen=True)
class Chunk:
    """Up to ``max_tokens`` consecutive tokens of one note, as index arrays."""

    #: index of the chunk's first token in the note
    offset: int
    words: np.ndarray
    shapes: np.ndarray
    chars: np.ndarray
    #: tag indices, -1 when the note has no gold spans
    tags: np.ndarray


def encode_tokens(
    tokens: Sequence[Token],
    vocabulary: Vocabulary,
    char_width: int,
    max_tokens: int,
    tag_index: dict[str, int] | None = None,
    spans: Sequence[Span] | None = None,
    stride: int | None = None,
) -> list[Chunk]:
    """The note's chunks; with ``spans`` and ``tag_index``, their gold BIO tag indices.

    Args:
        tokens: the note's tokens.
        vocabulary: the run's vocabularies.
        char_width: characters per token read.
        max_tokens: tokens per chunk.
        tag_index: tag name -> index (with ``spans``).
        spans: gold spans, for training chunks.
        stride: tokens between chunk starts (default ``max_tokens``: no overlap); the last
            chunk always reaches the note's end.
    """
    words = np.array([vocabulary.word(t.text) for t in tokens], np.int64)
    shapes = np.array([vocabulary.shape(t.text) for t in tokens], np.int64)
    chars = np.array([vocabulary.char_ids(t.text, char_width) for t in tokens], np.int64)
    chars = chars.reshape(len(tokens), char_width)
    if spans is not None and tag_index is not None:
        tags = np.array([tag_index[t] for t in spans_to_tags(tokens, spans)], np.int64)
    else:
        tags = np.full(len(tokens), -1, np.int64)
    step = stride or max_tokens
    starts = list(range(0, max(len(tokens) - max_tokens, 0) + 1, step))
    if starts[-1] + max_tokens < len(tokens):
        starts.append(len(tokens) - max_tokens)
    chunks = []
    for start in starts:
        part = tags[start : start + max_tokens].copy()
        if tag_index is not None and len(part) and part[0] >= 0:
            # a chunk that begins inside a span begins that span: an I- tag at the start is
            # a forbidden CRF transition, whose -1e4 score would swamp the loss
            part[0] = _opening(tag_index).get(int(part[0]), int(part[0]))
        end = start + max_tokens
        chunks.append(Chunk(start, words[start:end], shapes[start:end], chars[start:end], part))
    return chunks


def _opening(tag_index: dict[str, int]) -> dict[int, int]:
    """``I-T`` index -> ``B-T`` index."""
    return {
        index: tag_index[f"B-{name[2:]}"]
        for name, index in tag_index.items()
        if name.startswith("I-") and f"B-{name[2:]}" in tag_index
    }


def window_owner(chunks: Sequence[Chunk], n_tokens: int) -> np.ndarray:
    """For each token, the index of the chunk in which it lies farthest from an edge."""
    best = np.full(n_tokens, -1, np.int64)
    margin = np.full(n_tokens, -1, np.int64)
    for k, chunk in enumerate(chunks):
        positions = np.arange(chunk.offset, chunk.offset + len(chunk.words))
        inner = np.minimum(
            positions - chunk.offset, chunk.offset + len(chunk.words) - 1 - positions
        )
        # a note's first and last tokens are as central as they can be in their only window
        inner = np.where(positions == 0, n_tokens, inner)
        inner = np.where(positions == n_tokens - 1, n_tokens, inner)
        better = inner > margin[positions]
        best[positions[better]] = k
        margin[positions[better]] = inner[better]
    return best


def collate(
    chunks: Sequence[Chunk],
    word_dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A padded batch: inputs (``words, shapes, chars, mask``) and tags (-1 on padding).

    Args:
        chunks: the batch's chunks (each at least one token).
        word_dropout: share of words replaced by ``<unk>`` (training only), drawn from
            ``generator``, so unknown words at prediction time have a trained embedding.
        generator: the loop's random generator (needed with ``word_dropout``).
    """
    length = max(len(c.words) for c in chunks)
    width = chunks[0].chars.shape[1]
    n = len(chunks)
    words = torch.zeros(n, length, dtype=torch.int64)
    shapes = torch.zeros(n, length, dtype=torch.int64)
    chars = torch.zeros(n, length, width, dtype=torch.int64)
    tags = torch.full((n, length), -1, dtype=torch.int64)
    for row, chunk in enumerate(chunks):
        size = len(chunk.words)
        words[row, :size] = torch.from_numpy(chunk.words)
        shapes[row, :size] = torch.from_numpy(chunk.shapes)
        chars[row, :size] = torch.from_numpy(chunk.chars)
        tags[row, :size] = torch.from_numpy(chunk.tags)
    mask = torch.zeros(n, length, dtype=torch.bool)
    for row, chunk in enumerate(chunks):
        mask[row, : len(chunk.words)] = True
    if word_dropout > 0:
        dropped = torch.rand(words.shape, generator=generator) < word_dropout
        words = torch.where(dropped & mask, torch.ones_like(words), words)
    return {"words": words, "shapes": shapes, "chars": chars, "mask": mask}, tags
