"""Every registered EHR sequence model: shapes, dtype, seeded determinism, padding and batch
invariance, the embed / forward_embedded split, and gradients reaching the embeddings."""

from __future__ import annotations

import pytest
import torch

from medsight.ehr.models.registry import create_ehr_model, list_ehr_models
from medsight.ehr.models.spec import ModelSpec
from medsight.errors import InputError

SPEC = ModelSpec(vocab_size=30, value_bins=5, embed_dim=16, hidden_dim=16, heads=2)
MODELS = list_ehr_models()


def _batch(lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n, width = len(lengths), max(max(lengths), 1)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    bins = torch.randint(0, SPEC.value_bins + 2, (n, width), generator=g)
    hours = torch.rand(n, width, generator=g) * 1000
    batch = {
        "code": torch.randint(2, SPEC.vocab_size, (n, width), generator=g),
        "value_bin": bins,
        "value": torch.randn(n, width, generator=g) * (bins > 0),
        "hours_before": hours.sort(dim=1, descending=True).values,
        "delta_hours": torch.rand(n, width, generator=g) * 100,
        "mask": mask,
        "age_years": torch.tensor([40.0 + 5 * i for i in range(n)]),
        "sex": torch.tensor([i % 3 for i in range(n)]),
    }
    for key in ("code", "value_bin", "value", "hours_before", "delta_hours"):
        batch[key] = batch[key] * mask
    batch["age_years"][0] = float("nan")  # unknown age
    return batch


def _pad(batch: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in batch.items():
        if value.dim() == 2:
            fill = torch.zeros(value.shape[0], extra, dtype=value.dtype)
            out[key] = torch.cat([value, fill], dim=1)
        else:
            out[key] = value
    return out


def _model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_ehr_model(name, SPEC).eval()


def test_the_four_families_are_registered() -> None:
    assert {"gru", "lstm", "transformer", "retain"} <= set(MODELS)
    with pytest.raises(InputError, match="unknown EHR model 'nope'"):
        create_ehr_model("nope", SPEC)


@pytest.mark.parametrize("name", MODELS)
def test_logits_shape_dtype_and_seeded_determinism(name: str) -> None:
    batch = _batch([5, 1, 0, 7])
    logits = _model(name)(batch)
    assert logits.shape == (4,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()  # also for the sample without events
    assert torch.equal(_model(name)(batch), logits)
    assert not torch.equal(_model(name, seed=1)(batch), logits)


@pytest.mark.parametrize("name", MODELS)
def test_appending_padding_changes_nothing(name: str) -> None:
    model, batch = _model(name), _batch([5, 2, 0, 7])
    with torch.no_grad():
        torch.testing.assert_close(model(_pad(batch, 9)), model(batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_a_sample_does_not_depend_on_its_batch_mates(name: str) -> None:
    model, batch = _model(name), _batch([4, 6, 3])
    alone = {k: v[1:2, :6] if v.dim() == 2 else v[1:2] for k, v in batch.items()}
    with torch.no_grad():
        torch.testing.assert_close(model(alone)[0], model(batch)[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_embed_then_forward_embedded_is_forward_and_gradients_reach_events(name: str) -> None:
    model, batch = _model(name), _batch([5, 3])
    embeddings = model.embed(batch)
    assert embeddings.shape == (2, 5, SPEC.embed_dim)
    assert embeddings[1, 3:].abs().sum() == 0  # padding embeds to zero
    torch.testing.assert_close(model.forward_embedded(embeddings, batch), model(batch))
    leaf = embeddings.detach().requires_grad_(True)
    model.forward_embedded(leaf, batch).sum().backward()
    assert leaf.grad is not None and leaf.grad[:, :3].abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_a_training_step_lowers_the_loss_on_a_fixed_batch(name: str) -> None:
    model = _model(name).train()
    batch, target = _batch([6, 4, 5, 3, 6, 2]), torch.tensor([1.0, 0, 1, 0, 1, 0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_retain_contributions_add_up_to_its_event_logit() -> None:
    model, batch = _model("retain"), _batch([5, 3, 0])
    with torch.no_grad():
        shares = model.contributions(batch)
        static = (model.static_output(model.static(batch)) + model.output.bias).squeeze(-1)
        logits = model(batch)
    assert shares.shape == (3, 5) and shares[1, 3:].abs().sum() == 0
    torch.testing.assert_close(shares.sum(1) + static, logits, rtol=1e-5, atol=1e-5)
