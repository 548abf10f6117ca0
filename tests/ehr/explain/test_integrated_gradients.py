from collections.abc import Mapping

import pytest
import torch
from torch import Tensor, nn

from medsight.ehr.explain.integrated_gradients import baseline_logits, event_attributions


class TinyGru(nn.Module):
    """A small model with the sequence models' embed / forward_embedded surface."""

    def __init__(self, vocab: int = 12, dim: int = 8) -> None:
        super().__init__()
        self.code = nn.Embedding(vocab, dim, padding_idx=0)
        self.value = nn.Linear(1, dim)
        self.time = nn.Linear(1, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim + 1, 1)

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        hours = torch.log1p(batch["hours_before"]).unsqueeze(-1)
        return (
            self.code(batch["code"]) + self.value(batch["value"].unsqueeze(-1)) + self.time(hours)
        )

    def forward_embedded(self, embeddings: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        mask = batch["mask"].unsqueeze(-1).float()
        out, _ = self.gru(embeddings * mask)
        last = (out * mask).sum(1) / mask.sum(1).clamp(min=1)
        age = (batch["age_years"] / 100).unsqueeze(-1)
        return self.head(torch.cat([last, age], dim=1)).squeeze(-1)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self.forward_embedded(self.embed(batch), batch)


def tiny_batch(n: int = 4, length: int = 7, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 5, 3, 1])[:n]
    mask = torch.arange(length)[None, :] < lengths[:, None]
    code = torch.randint(2, 12, (n, length), generator=g) * mask
    return {
        "code": code,
        "value_bin": torch.zeros(n, length, dtype=torch.int64),
        "value": torch.randn(n, length, generator=g) * mask,
        "hours_before": torch.rand(n, length, generator=g) * 1000 * mask,
        "delta_hours": torch.rand(n, length, generator=g) * mask,
        "mask": mask,
        "age_years": torch.full((n,), 60.0),
        "sex": torch.ones(n, dtype=torch.int64),
    }


@pytest.fixture()
def model() -> TinyGru:
    torch.manual_seed(0)
    return TinyGru().eval()


def test_completeness_attributions_sum_to_the_logit_change(model: TinyGru) -> None:
    batch = tiny_batch()
    attributions = event_attributions(model, batch, steps=64)
    logits, baseline = baseline_logits(model, batch)
    assert attributions.shape == (4, 7)
    torch.testing.assert_close(attributions.sum(1), logits - baseline, atol=2e-3, rtol=1e-2)
    assert torch.all(attributions[~batch["mask"]] == 0)
    assert torch.all(attributions[batch["mask"]].abs() > 0)


def test_padding_does_not_change_the_attributions(model: TinyGru) -> None:
    batch = tiny_batch()
    longer = {
        k: torch.cat([v, torch.zeros(v.shape[0], 3, dtype=v.dtype)], 1) if v.dim() == 2 else v
        for k, v in batch.items()
    }
    torch.testing.assert_close(
        event_attributions(model, longer, steps=16)[:, :7],
        event_attributions(model, batch, steps=16),
        atol=1e-5,
        rtol=1e-4,
    )


def test_an_event_the_model_ignores_gets_no_attribution() -> None:
    class OnlyFirst(TinyGru):
        def forward_embedded(self, embeddings: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
            return embeddings[:, 0].sum(-1)

    model = OnlyFirst().eval()
    batch = tiny_batch()
    attributions = event_attributions(model, batch, steps=8)
    assert torch.all(attributions[:, 1:] == 0)
    # linear in the embeddings: IG is exact, whatever the step count
    torch.testing.assert_close(attributions[:, 0], model.embed(batch)[:, 0].sum(-1).detach())


def test_bad_steps_are_refused(model: TinyGru) -> None:
    with pytest.raises(ValueError, match="steps"):
        event_attributions(model, tiny_batch(), steps=0)
