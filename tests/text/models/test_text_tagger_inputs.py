"""Long notes are read in half-overlapping windows; each token's tag comes from a window in
which it has context on both sides."""

from __future__ import annotations

from medsight.text.models.tagger_inputs import encode_tokens, window_owner
from medsight.text.models.tagger_tokens import tokenize
from medsight.text.models.tagger_vocabulary import Vocabulary


def test_every_token_is_tagged_from_a_window_where_it_is_central() -> None:
    size = 8
    for n in range(1, 40):
        tokens = tokenize(" ".join(["word"] * n))
        vocabulary = Vocabulary.build([t.text for t in tokens])
        chunks = encode_tokens(tokens, vocabulary, 4, size, stride=size // 2)
        assert chunks[0].offset == 0 and chunks[-1].offset + len(chunks[-1].words) == n
        owner = window_owner(chunks, n)
        for i, k in enumerate(owner.tolist()):
            start, end = chunks[k].offset, chunks[k].offset + len(chunks[k].words)
            assert start <= i < end
            # at least a quarter window of context on each side, unless the note ends first
            assert min(i - start, end - 1 - i) >= min(size // 4 - 1, i, n - 1 - i)
