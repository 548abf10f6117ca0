"""A subword tokenizer trained on a run's training notes (Hugging Face ``tokenizers``).

WordPiece over lower-cased, accent-stripped text split on whitespace and punctuation (BERT's
normaliser and pre-tokenizer), so a misspelt or unseen clinical word still maps to pieces
the model has seen. Id 0 is ``[PAD]``, 1 ``[UNK]``.

The vocabulary is chosen here (`wordpiece_vocabulary`) rather than by the library's
``WordPieceTrainer``: that trainer breaks ties between equally frequent merges in hash-map
order, which changes from process to process (three runs on the same 700 radiology reports
gave vocabularies of 3,211, 3,212 and 3,214 pieces), so the same seed and data would not
give the same run. Ours ranks pieces by the characters they save, ties by spelling. The
tokenizer is saved as ``tokenizer.json`` in the run (never pickled) and reloaded by
prediction and explanation.
"""

from __future__ import annotations

from collections import Counter
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


def _empty_tokenizer(vocabulary: dict[str, int]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token=UNK, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each normalised, pre-tokenised word occurs in ``texts``."""
    splitter = _empty_tokenizer({PAD: 0, UNK: 1})
    normalizer, pre_tokenizer = splitter.normalizer, splitter.pre_tokenizer
    assert normalizer is not None and pre_tokenizer is not None
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def wordpiece_vocabulary(
    counts: Counter[str], vocab_size: int, min_frequency: int = 2
) -> list[str]:
    """A WordPiece vocabulary chosen deterministically from word counts.

    Every character seen (word-initial, and ``##``-continuation) so no word is unknown;
    then, by score and ties by spelling, whole words seen ``min_frequency`` times or more and
    the word-initial prefixes and ``##`` suffixes shared by frequent words, each scored by
    the characters it saves (occurrences x (length - 1)), up to ``vocab_size`` pieces.
    """
    alphabet: set[str] = set()
    scores: Counter[str] = Counter()
    for word, n in counts.items():
        alphabet.add(word[0])
        alphabet.update("##" + c for c in word[1:])
        if len(word) > 1 and n >= min_frequency:
            scores[word] += n * (len(word) - 1) * 2  # a whole word saves a split too
            for k in range(2, len(word)):
                scores[word[:k]] += n * (k - 1)
                scores["##" + word[len(word) - k :]] += n * (k - 1)
    pieces = [PAD, UNK, *sorted(alphabet)]
    room = max(0, vocab_size - len(pieces))
    ranked = sorted(
        (p for p, score in scores.items() if score >= min_frequency), key=lambda p: (-scores[p], p)
    )
    taken = set(pieces)
    pieces += [p for p in ranked if p not in taken][:room]
    return pieces


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A WordPiece tokenizer learnt from ``texts`` (the training split only).

    The vocabulary is `wordpiece_vocabulary`'s; everything else (normaliser, pre-tokenizer,
    greedy longest-match WordPiece, ``tokenizer.json``) is the ``tokenizers`` library's.

    Args:
        texts: the training notes.
        vocab_size: the largest vocabulary (pieces) to learn.
        min_frequency: words seen fewer times add no pieces of their own.
    """
    pieces = wordpiece_vocabulary(word_counts(texts), vocab_size, min_frequency)
    return _empty_tokenizer({piece: i for i, piece in enumerate(pieces)})


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
