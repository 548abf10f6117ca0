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


def test_a_training_chunk_starting_inside_a_span_opens_it() -> None:
    from medsight.text.models.tagger_tokens import tag_names

    tokens = tokenize("a b c d e f g h")
    vocabulary = Vocabulary.build([t.text for t in tokens])
    tags = tag_names(["X"])
    index = {t: i for i, t in enumerate(tags)}
    # "c d e" is one span; chunks of 3 tokens start at a, d, f: the second begins inside it
    chunks = encode_tokens(tokens, vocabulary, 4, 3, index, [(4, 9, "X")])
    assert [c.offset for c in chunks] == [0, 3, 5]
    assert [tags[i] for i in chunks[1].tags] == ["B-X", "I-X", "O"]
    assert [tags[i] for i in chunks[0].tags] == ["O", "O", "B-X"]
