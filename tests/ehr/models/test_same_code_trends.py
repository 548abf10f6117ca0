"""The trend input of the shared event embedding: matches a direct reading of each event's
earlier values of its code, and nothing later, padded or from a batch mate reaches it."""

from __future__ import annotations

import math

import torch

from medsight.ehr.models.embedding import same_code_trends

YEAR_HOURS = 24 * 365.25


def _batch(n: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(length)[None, :] < torch.randint(0, length + 1, (n, 1), generator=g)
    bins = torch.randint(0, 3, (n, length), generator=g) * mask
    hours = torch.rand(n, length, generator=g).sort(dim=1, descending=True).values * 9000
    return {
        "code": torch.randint(2, 6, (n, length), generator=g) * mask,
        "value_bin": bins,
        "value": torch.randn(n, length, generator=g) * (bins > 0),
        "hours_before": hours * mask,
        "mask": mask,
    }


def _reference(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    n, length = batch["code"].shape
    out = torch.zeros(n, length, 4)
    for s in range(n):
        for i in range(length):
            if not (batch["mask"][s, i] and batch["value_bin"][s, i] > 0):
                continue
            earlier = [
                j
                for j in range(i)
                if batch["value_bin"][s, j] > 0 and batch["code"][s, j] == batch["code"][s, i]
            ]
            if not earlier:
                continue
            v = batch["value"][s]
            gap = float(batch["hours_before"][s, earlier[-1]] - batch["hours_before"][s, i])
            out[s, i] = torch.tensor(
                [
                    v[i] - v[earlier[-1]],
                    v[i] - v[earlier[0]],
                    math.log1p(max(gap, 0.0)) / math.log1p(10 * YEAR_HOURS),
                    1.0,
                ]
            )
    return out


def test_trends_match_the_earlier_values_of_each_code() -> None:
    for seed in range(5):
        batch = _batch(4, 30, seed)
        torch.testing.assert_close(same_code_trends(batch), _reference(batch))


def test_later_events_padding_and_batch_mates_change_no_trend() -> None:
    batch = _batch(3, 20, seed=7)
    batch["mask"][:] = True
    whole = same_code_trends(batch)
    cut = {k: v[:, :12] for k, v in batch.items()}
    torch.testing.assert_close(same_code_trends(cut), whole[:, :12])
    padded = {k: torch.cat([v, torch.zeros_like(v[:, :5])], dim=1) for k, v in batch.items()}
    torch.testing.assert_close(same_code_trends(padded)[:, :20], whole)
    alone = {k: v[1:2] for k, v in batch.items()}
    torch.testing.assert_close(same_code_trends(alone), whole[1:2])
