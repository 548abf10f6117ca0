"""bf16 training of lungct-cnn through the one loop: finite losses that go down, norms in fp32.

Skipped where the CPU has no native bf16 (`medsight.hardware.native_bf16`): there bf16 is
emulated, and the CLI's ``--precision auto`` never picks it.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from medsight.hardware import native_bf16
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_fit import fit_classifier
from medsight.train.fabric_setup import norms_in_fp32

needs_bf16 = pytest.mark.skipif(
    not native_bf16(), reason="this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)"
)


@needs_bf16
def test_bf16_training_is_finite_and_learns(toy) -> None:
    x, y = toy(24, seed=0)
    config = TrainConfig(
        model_kwargs={"depth": 3},
        batch_size=4,
        max_epochs=4,
        patience=4,
        learning_rate=3e-3,
        bf16=True,
        augment=False,
        schedule="constant",
    )
    fit = fit_classifier(x[:18], y[:18], x[18:], y[18:], 3, config)
    losses = [row["train_loss"] for row in fit.history]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert all(torch.isfinite(p).all() for p in fit.model.parameters())


@needs_bf16
def test_batch_norm_on_bf16_input_computes_in_fp32() -> None:
    """Why `norms_in_fp32` leaves batch norm alone: its CPU kernel already computes in fp32."""
    x = torch.randn(2, 8, 6, 10, 12, generator=torch.Generator().manual_seed(0)) * 3 + 5
    x = x.bfloat16()
    mixed, full = nn.BatchNorm3d(8), nn.BatchNorm3d(8)
    out = mixed(x)
    expected = full(x.float())
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, expected.bfloat16())  # fp32 arithmetic, output rounded once
    assert mixed.running_var.dtype == torch.float32
    torch.testing.assert_close(mixed.running_var, full.running_var)


def test_norms_in_fp32_hooks_the_other_norms() -> None:
    model = nn.Sequential(nn.Conv3d(1, 4, 3), nn.GroupNorm(2, 4), nn.BatchNorm3d(4))
    assert norms_in_fp32(model) == 1
    keys = list(model.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model[1](model[0](torch.rand(1, 1, 5, 5, 5)))
    assert out.dtype == torch.float32
    assert list(model.state_dict()) == keys
    assert np.isfinite(out.detach().numpy()).all()
