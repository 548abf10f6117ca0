"""Both tagger networks: emissions of a note do not depend on what else is in its batch."""

from __future__ import annotations

import pytest
import torch

from medsight.text.models.tagger_inputs import collate, encode_tokens
from medsight.text.models.tagger_network import TaggerNetwork
from medsight.text.models.tagger_sizes import TaggerSizes
from medsight.text.models.tagger_tokens import tag_names, tokenize
from medsight.text.models.tagger_vocabulary import Vocabulary

SHORT = "No pleural effusion."
LONG = "There is a small left pleural effusion and basal atelectasis, unchanged since 2101."


@pytest.mark.parametrize("name", ["bilstm-crf", "transformer-crf"])
def test_padding_does_not_change_a_notes_emissions(name: str) -> None:
    torch.manual_seed(0)
    tokens = [tokenize(SHORT), tokenize(LONG)]
    vocabulary = Vocabulary.build((t.text for ts in tokens for t in ts), min_count=1)
    sizes = TaggerSizes(word_dim=8, shape_dim=4, char_dim=6, char_filters=8, hidden_dim=16)
    tags = tag_names(["finding"])
    network = TaggerNetwork(
        name, sizes, tags, len(vocabulary.words), len(vocabulary.shapes), len(vocabulary.chars)
    ).eval()
    chunks = [encode_tokens(ts, vocabulary, sizes.char_width, sizes.max_tokens)[0] for ts in tokens]
    with torch.no_grad():
        alone = network(collate(chunks[:1])[0])
        batched = network(collate(chunks)[0])
    assert batched.shape == (2, len(tokens[1]), len(tags))
    n = len(tokens[0])
    torch.testing.assert_close(batched[0, :n], alone[0], atol=1e-5, rtol=1e-4)
