"""A linear-chain conditional random field over BIO tags: log-likelihood, Viterbi, marginals.

Written here because torch has no CRF layer and no maintained one fits the project's stack:
pytorch-crf's last release (0.7.2, 2019) predates torch 2.x, and AllenNLP's (archived) and
torchcrf forks pull in their own frameworks. The algorithms are short, vectorised over the
batch and the tags (one loop over time steps), and tested against brute-force enumeration.

Conventions: ``emissions`` are ``(N, T, K)`` scores of K tags at T tokens, ``mask`` is
``(N, T)`` bool, True on real tokens and a prefix of each row (padding at the end; each row
has at least one token). ``transitions[i, j]`` scores tag i followed by tag j. Transitions
that make an invalid BIO sequence (``O -> I-X``, ``B-X -> I-Y``, a start on ``I-X``) are
fixed at `FORBIDDEN`, so every decoded sequence is valid BIO.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: the score of a forbidden transition: exp(-1e4) is 0 in float32, yet no inf - inf NaNs
FORBIDDEN = -1.0e4


def bio_constraints(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Forbidden-transition masks: ``(start (K,), transitions (K, K))``, True where forbidden."""
    k = len(tags)
    start = torch.zeros(k, dtype=torch.bool)
    transitions = torch.zeros(k, k, dtype=torch.bool)
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        start[j] = True
        kind = tag[2:]
        for i, previous in enumerate(tags):
            transitions[i, j] = previous not in (f"B-{kind}", f"I-{kind}")
    return start, transitions


class CRF(nn.Module):
    """Start, end and transition scores of a tag set, with BIO constraints when tags are BIO."""

    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        k = len(tags)
        self.start = nn.Parameter(torch.zeros(k))
        self.end = nn.Parameter(torch.zeros(k))
        self.transitions = nn.Parameter(torch.zeros(k, k))
        forbidden_start, forbidden = bio_constraints(tags)
        self.forbidden_start: torch.Tensor
        self.forbidden: torch.Tensor
        self.register_buffer("forbidden_start", forbidden_start, persistent=False)
        self.register_buffer("forbidden", forbidden, persistent=False)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(start, transitions, end)`` with the forbidden ones set to `FORBIDDEN`."""
        start = self.start.masked_fill(self.forbidden_start, FORBIDDEN)
        transitions = self.transitions.masked_fill(self.forbidden, FORBIDDEN)
        return start, transitions, self.end

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``log Z`` per sequence ``(N,)``: the forward algorithm in log space."""
        start, transitions, end = self.scores()
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t : t + 1], step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def path_score(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The unnormalised score of the tag sequences ``tags`` ``(N, T)`` (pads ignored)."""
        start, transitions, end = self.scores()
        safe = tags.clamp(min=0)
        weights = mask.to(emissions.dtype)
        emitted = emissions.gather(2, safe.unsqueeze(2)).squeeze(2)
        score = start[safe[:, 0]] + (emitted * weights).sum(1)
        moves = transitions[safe[:, :-1], safe[:, 1:]]
        score = score + (moves * weights[:, 1:]).sum(1)
        last = mask.long().sum(1) - 1
        return score + end[safe.gather(1, last.unsqueeze(1)).squeeze(1)]

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of ``tags`` (``(N, T)``, -1 on padding)."""
        mask = tags >= 0
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).sum()

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-token tag probabilities ``(N, T, K)``: the gradient of ``log Z`` by emissions.

        ``d log Z / d emission[t, k]`` is exactly P(tag_t = k), so autograd runs the backward
        pass of forward-backward for us.
        """
        with torch.enable_grad():
            scores = emissions.detach().float().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_partition(scores, mask).sum(), scores)
        return grad * mask.unsqueeze(2)

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each row (its real tokens only)."""
        start, transitions, end = self.scores()
        n, length, _ = emissions.shape
        best = start + emissions[:, 0]
        pointers = []
        for t in range(1, length):
            candidates = best.unsqueeze(2) + transitions
            top, previous = candidates.max(dim=1)
            step = top + emissions[:, t]
            keep = mask[:, t : t + 1]
            best = torch.where(keep, step, best)
            # a padded step points each tag at itself, so backtracking passes through it
            identity = torch.arange(previous.shape[1]).expand_as(previous)
            pointers.append(torch.where(keep, previous, identity))
        final = (best + end).argmax(dim=1)
        lengths = mask.long().sum(1).tolist()
        back = torch.stack(pointers, dim=1).tolist() if pointers else [[] for _ in range(n)]
        paths = []
        for row in range(n):
            tag = int(final[row])
            path = [tag]
            for t in range(length - 2, -1, -1):
                tag = back[row][t][tag]
                path.append(tag)
            path.reverse()
            paths.append(path[: lengths[row]])
        return paths
