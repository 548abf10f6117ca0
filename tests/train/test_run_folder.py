"""A fit in a run folder: settings, per-epoch history (kept across a resume), checkpoints."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medsight.train.config import LoopConfig
from medsight.train.loop import FitResult, LoopHooks, TrainedEpoch, fit
from medsight.train.run_folder import fit_in_run_folder


class Killed(Exception):
    pass


def _fit(config: LoopConfig):
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(16, 1, 2, 2)).astype(np.float32))
    y = (x[:, 0, 0, 0] > 0).long()

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], tuple[float, float]]:
        return {"val_loss": trained.train_loss}, (-trained.train_loss, 0.0)

    def run(*, on_epoch, state_dir: Path, resume: bool) -> FitResult:
        hooks = LoopHooks(
            build_model=lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
            make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
            epoch_batches=lambda g, epoch: [(x[i : i + 4], y[i : i + 4]) for i in range(0, 16, 4)],
            loss=nn.functional.cross_entropy,
            validate=validate,
            final_model=lambda best: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
            tolerance=0.0,
        )
        return fit(config, hooks, on_epoch=on_epoch, state_dir=state_dir, resume=resume)

    return run


def test_settings_history_and_state_land_in_the_run_folder(tmp_path: Path) -> None:
    config = LoopConfig(model_name="tiny", spatial_dims=2, max_epochs=3, threads=1)

    def kill_after_two(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        fit_in_run_folder(tmp_path, config, _fit(config), on_epoch=kill_after_two)
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 1 + 2
    result = fit_in_run_folder(tmp_path, config, _fit(config), resume=True)

    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_loss,lr,seconds" and len(lines) == 1 + 3
    assert LoopConfig.model_validate_json((tmp_path / "train_config.json").read_text()) == config
    assert json.loads((tmp_path / "checkpoints" / "last.json").read_text())["epoch"] == 3
