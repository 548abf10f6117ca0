"""The tagger's CRF against brute-force enumeration of every tag sequence on tiny cases."""

from __future__ import annotations

import itertools

import pytest
import torch

from medsight.text.models.tagger_crf import CRF
from medsight.text.models.tagger_tokens import tag_names

TAGS = tag_names(["NAME"])  # O, B-NAME, I-NAME


def _crf(seed: int) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(TAGS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


@torch.no_grad()
def _score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    start, transitions, end = crf.scores()
    total = start[path[0]] + end[path[-1]]
    total = total + sum(emissions[t, k] for t, k in enumerate(path))
    total = total + sum(transitions[a, b] for a, b in itertools.pairwise(path))
    return float(total)


def _all_paths(length: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(len(TAGS)), repeat=length))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihood_matches_enumeration_with_padding(seed: int) -> None:
    crf = _crf(seed)
    emissions = torch.randn(2, 4, len(TAGS))
    lengths = [4, 2]
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    log_z = crf.log_partition(emissions, mask)
    gold = torch.tensor([[1, 2, 0, 1], [0, 1, -1, -1]])
    nll = crf.neg_log_likelihood(emissions, gold)
    expected = 0.0
    for row, length in enumerate(lengths):
        scores = torch.tensor([_score(crf, emissions[row], p) for p in _all_paths(length)])
        brute_z = float(torch.logsumexp(scores, 0))
        assert float(log_z[row]) == pytest.approx(brute_z, abs=1e-4)
        path = tuple(int(k) for k in gold[row, :length])
        expected += brute_z - _score(crf, emissions[row], path)
    assert float(nll) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_viterbi_finds_the_best_valid_path(seed: int) -> None:
    crf = _crf(seed)
    emissions = torch.randn(2, 5, len(TAGS)) * 2
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    paths = crf.viterbi(emissions, mask)
    for row, length in enumerate([5, 3]):
        best = max(_all_paths(length), key=lambda p: _score(crf, emissions[row], p))
        assert tuple(paths[row]) == best
        # BIO: never O -> I-NAME, never start on I-NAME
        assert paths[row][0] != 2
        assert all(not (a == 0 and b == 2) for a, b in itertools.pairwise(paths[row]))


def test_marginals_are_enumerated_probabilities() -> None:
    crf = _crf(7)
    emissions = torch.randn(1, 3, len(TAGS))
    mask = torch.ones(1, 3, dtype=torch.bool)
    marginals = crf.marginals(emissions, mask)[0]
    paths = _all_paths(3)
    weights = torch.softmax(torch.tensor([_score(crf, emissions[0], p) for p in paths]), 0)
    for t in range(3):
        for k in range(len(TAGS)):
            brute = sum(float(w) for w, p in zip(weights, paths, strict=True) if p[t] == k)
            assert float(marginals[t, k]) == pytest.approx(brute, abs=1e-5)
    assert torch.allclose(marginals.sum(1), torch.ones(3))
    # a sequence can never start inside a name
    assert float(marginals[0, 2]) < 1e-6
