"""A subword tokenizer trained on a run's training notes (Hugging Face ``tokenizers``).

WordPiece over lower-cased, accent-stripped text split on whitespace and punctuation (BERT's
normaliser and pre-tokenizer), so a misspelt or unseen clinical word still maps to pieces
the model has seen. Id 0 is ``[PAD]``, 1 ``[UNK]``. The tokenizer is saved as
``tokenizer.json`` in the run (never pickled) and reloaded by prediction and explanation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TOKENIZER_FILE = "tokenizer.json"
PAD, UNK = "[PAD]", "[UNK]"
PAD_ID = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A WordPiece tokenizer learnt from ``texts`` (the training split only).

    Args:
        texts: the training notes.
        vocab_size: the largest vocabulary (pieces) to learn.
        min_frequency: pieces seen fewer times are not added.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> Path:
    """Write ``tokenizer.json`` atomically."""
    return write_text_atomic(path, tokenizer.to_str())


def load_tokenizer(path: Path) -> Tokenizer:
    """A tokenizer saved by `save_tokenizer`.

    Raises:
        InputError: the file is missing or not a tokenizer.
    """
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise InputError(f"{path}: missing; train the run again with `medsight train`")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own Exception subclass for bad JSON
        raise InputError(f"{path}: not a tokenizers JSON file ({exc.__class__.__name__})") from None


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> list[np.ndarray]:
    """Token ids of each text (``int64``), cut to its first ``max_tokens`` pieces (at least one)."""
    out = []
    for encoding in tokenizer.encode_batch(list(texts)):
        ids = np.asarray(encoding.ids[:max_tokens], dtype=np.int64)
        out.append(ids if ids.size else np.asarray([tokenizer.token_to_id(UNK)], np.int64))
    return out


def pad_ids(sequences: Sequence[np.ndarray]) -> np.ndarray:
    """Right-padded ``(N, longest)`` id matrix (``PAD_ID`` after each sequence)."""
    longest = max((len(s) for s in sequences), default=1)
    batch = np.full((len(sequences), max(longest, 1)), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = ids
    return batch
