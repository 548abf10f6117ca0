"""The engine's training loop with a tiny network: resume, stopping rules, schedule, best epoch."""

import copy
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from medsight.errors import InputError
from medsight.train.config import LoopConfig
from medsight.train.loop import FitResult, LoopHooks, TrainedEpoch, fit, is_better, lr_factor


class Killed(Exception):
    pass


def _config(**overrides: object) -> LoopConfig:
    values: dict[str, object] = {
        "model_name": "tiny",
        "spatial_dims": 2,
        "max_epochs": 4,
        "batch_size": 8,
        "learning_rate": 0.05,
        "patience": 10,
        "seed": 1,
        "threads": 1,
    }
    return LoopConfig.model_validate({**values, **overrides})


class Tiny:
    """Hooks for a linear classifier of 4x4 images; records what the loop asked for."""

    def __init__(self, config: LoopConfig, scores: list[float] | None = None) -> None:
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.normal(size=(32, 1, 4, 4)).astype(np.float32))
        self.y = (self.x[:, 0, 0, 0] > 0).long()
        self.config = config
        self.scores = scores
        self.batches_drawn = 0
        self.epoch_states: list[dict[str, torch.Tensor]] = []

    def build(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    def batches(
        self, generator: torch.Generator, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.y), generator=generator)
        for i in range(0, len(order), self.config.batch_size):
            self.batches_drawn += 1
            idx = order[i : i + self.config.batch_size]
            noise = 0.1 * torch.randn(self.x[idx].shape, generator=generator)
            yield self.x[idx] + noise, self.y[idx]

    def validate(self, trained: TrainedEpoch) -> tuple[dict[str, float], tuple[float, float]]:
        self.epoch_states.append(copy.deepcopy(trained.network.state_dict()))
        with torch.no_grad():
            accuracy = float((trained.model(self.x).argmax(1) == self.y).float().mean())
        score = self.scores[trained.epoch - 1] if self.scores else accuracy
        return {"val_accuracy": accuracy}, (score, -trained.train_loss)

    def final(self, best: dict[str, torch.Tensor] | None) -> nn.Module:
        model = self.build()
        if best is not None:
            model.load_state_dict(best)
        return model

    def hooks(self, **overrides: Any) -> LoopHooks:
        hooks = LoopHooks(
            build_model=self.build,
            make_optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=0.05),
            epoch_batches=self.batches,
            loss=nn.functional.cross_entropy,
            validate=self.validate,
            final_model=self.final,
            tolerance=0.0,
        )
        return dataclasses.replace(hooks, **overrides)


def _run(
    config: LoopConfig,
    scores: list[float] | None = None,
    hooks: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> tuple[FitResult, Tiny]:
    tiny = Tiny(config, scores)
    return fit(config, tiny.hooks(**(hooks or {})), **fit_kwargs), tiny


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_history_rows_and_determinism() -> None:
    a, _ = _run(_config())
    b, _ = _run(_config())
    assert [list(row) for row in a.history] == [
        ["epoch", "train_loss", "val_accuracy", "lr", "seconds"]
    ] * 4
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert _same_weights(a.model, b.model)
    assert not a.model.training


def test_the_best_epochs_weights_are_returned() -> None:
    result, tiny = _run(_config(), scores=[0.2, 0.9, 0.5, 0.4])
    assert result.best_epoch == 2
    best = tiny.epoch_states[1]
    assert all(torch.equal(v, result.model.state_dict()[k]) for k, v in best.items())


def test_resume_after_a_kill_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    whole, _ = _run(_config(), state_dir=tmp_path / "whole")

    def kill_after_two(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(_config(), on_epoch=kill_after_two, state_dir=tmp_path / "cut")
    resumed, tiny = _run(_config(), state_dir=tmp_path / "cut", resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    assert tiny.batches_drawn == 2 * 4  # only epochs 3 and 4 ran again
    assert resumed.best_epoch == whole.best_epoch
    assert _same_weights(whole.model, resumed.model)


def test_resume_without_state_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to resume"):
        _run(_config(), state_dir=tmp_path, resume=True)


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    _run(_config(max_epochs=2), state_dir=tmp_path)
    with pytest.raises(InputError, match="same settings as the interrupted run"):
        _run(_config(max_epochs=2, learning_rate=0.01), state_dir=tmp_path, resume=True)


def test_resume_compares_settings_not_their_key_order(tmp_path: Path) -> None:
    """States saved before the configs shared `LoopConfig` list the keys in another order."""
    config = _config(max_epochs=2)
    _run(config, state_dir=tmp_path)
    meta = tmp_path / "last.json"
    saved = json.loads(meta.read_text())
    reordered = dict(reversed(list(json.loads(saved["config_json"]).items())))
    meta.write_text(json.dumps({**saved, "config_json": json.dumps(reordered)}))
    resumed, tiny = _run(config, state_dir=tmp_path, resume=True)
    assert len(resumed.history) == 2 and tiny.batches_drawn == 0


def test_patience_stops_after_that_many_epochs_without_a_better_score() -> None:
    scores = [0.5, 0.7, 0.6, 0.6, 0.9, 1.0]
    result, _ = _run(_config(max_epochs=6, patience=2), scores=scores)
    assert len(result.history) == 4  # epochs 3 and 4 did not beat epoch 2
    assert result.best_epoch == 2


@pytest.mark.parametrize("mid_epoch", [False, True])
def test_time_budget(monkeypatch: pytest.MonkeyPatch, mid_epoch: bool) -> None:
    """A clock that moves 10 s per batch; 4 batches an epoch; a 55 s budget."""
    config = _config(max_epochs=5, max_minutes=55 / 60)
    tiny = Tiny(config)
    monkeypatch.setattr(time, "perf_counter", lambda: 10.0 * tiny.batches_drawn)
    result = fit(config, tiny.hooks(stop_mid_epoch=mid_epoch))
    if mid_epoch:  # epoch 2 stops after its 2nd batch (60 s > 55 s), is validated, and ends
        assert tiny.batches_drawn == 6 and len(result.history) == 2
    else:  # epochs always finish; the budget is checked before each one
        assert tiny.batches_drawn == 8 and len(result.history) == 2
    assert result.history[-1]["seconds"] == 10.0 * tiny.batches_drawn


def test_gradient_clipping_changes_the_steps() -> None:
    plain, _ = _run(_config(max_epochs=1))
    clipped, _ = _run(_config(max_epochs=1), hooks={"clip_grad_norm": 1e-3})
    assert not _same_weights(plain.model, clipped.model)


@pytest.mark.parametrize("schedule", ["cosine", "steps", "constant"])
def test_lr_schedules_are_closed_form(schedule: str) -> None:
    cfg = _config(max_epochs=8, schedule=schedule)
    factors = [lr_factor(cfg, e) for e in range(9)]
    assert factors[0] == 1.0
    if schedule == "steps":  # MedMNIST v2: x0.1 at 50% and 75% of the epochs
        assert (
            factors[3] == 1.0
            and factors[4] == pytest.approx(0.1)
            and factors[6] == pytest.approx(0.01)
        )
    elif schedule == "cosine":
        assert factors[8] == pytest.approx(0.0) and factors[4] == pytest.approx(0.5)
    else:
        assert set(factors) == {1.0}


def test_the_schedule_reaches_the_optimizer() -> None:
    result, _ = _run(_config(max_epochs=4, schedule="steps"))
    assert [r["lr"] for r in result.history] == pytest.approx([0.05, 0.05, 0.005, 0.0005])


def test_scores_within_tolerance_tie_and_the_tie_breaker_decides() -> None:
    assert is_better((0.80, -1.0), (0.75, -0.5), tolerance=0.01)
    assert not is_better((0.755, -1.0), (0.75, -0.5), tolerance=0.01)
    assert is_better((0.745, -0.4), (0.75, -0.5), tolerance=0.01)
    assert not is_better((0.70, 0.0), (0.75, -0.5), tolerance=0.01)
