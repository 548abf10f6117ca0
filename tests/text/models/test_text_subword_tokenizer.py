"""The subword tokenizer: deterministic vocabulary, unseen words in pieces, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.text.models.subword_tokenizer import (
    PAD_ID,
    encode_texts,
    load_tokenizer,
    pad_ids,
    save_tokenizer,
    train_tokenizer,
)

TEXTS = [
    "Small left pleural effusion. No pneumothorax.",
    "Large right pleural effusion with atelectasis.",
    "No pleural effusion or pneumothorax is seen.",
    "Pneumothorax on the left, unchanged effusion.",
] * 5


def test_same_notes_give_the_same_tokenizer() -> None:
    assert train_tokenizer(TEXTS, 200).to_str() == train_tokenizer(TEXTS, 200).to_str()


def test_a_misspelt_word_becomes_known_pieces_not_unknown() -> None:
    tokenizer = train_tokenizer(TEXTS, 200)
    tokens = tokenizer.encode("pleural efusion").tokens
    assert tokens[0] == "pleural" and "[UNK]" not in tokens and len(tokens) > 2


def test_vocabulary_size_is_bounded() -> None:
    assert train_tokenizer(TEXTS, 60).get_vocab_size() <= 60


def test_saved_tokenizer_encodes_the_same(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(TEXTS, 200)
    again = load_tokenizer(save_tokenizer(tokenizer, tmp_path / "tokenizer.json"))
    assert again.encode(TEXTS[0]).ids == tokenizer.encode(TEXTS[0]).ids


def test_encoding_cuts_long_notes_and_padding_fills_with_zero() -> None:
    tokenizer = train_tokenizer(TEXTS, 200)
    ids = encode_texts(tokenizer, ["effusion " * 50, "no"], max_tokens=16)
    assert [len(x) for x in ids] == [16, 1]
    batch = pad_ids(ids)
    assert batch.shape == (2, 16) and np.all(batch[1, 1:] == PAD_ID)


def test_a_missing_or_broken_tokenizer_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing"):
        load_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(InputError, match="not a tokenizers JSON"):
        load_tokenizer(tmp_path / "tokenizer.json")
