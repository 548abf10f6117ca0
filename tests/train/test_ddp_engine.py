"""The engine's `fit` under ``torchrun --nproc_per_node 2`` (gloo): the ranks end with the same
weights, those of a one-process run (the batch and learning-rate rule), only rank 0 writes, and
``--resume`` after a kill ends with the uninterrupted run's weights.

This file is also the script torchrun starts (``__main__``): each rank trains the tiny task
below through the public `fit` and writes what it ended with to ``OUT/rank{R}.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medsight.train.config import LoopConfig
from medsight.train.loop import FitResult, LoopHooks, TrainedEpoch, fit

#: 29 samples in batches of 8: the last batch (5) splits 3 + 2, unevenly
SAMPLES, BATCH, EPOCHS = 29, 8, 4


def _config() -> LoopConfig:
    return LoopConfig(
        model_name="tiny",
        spatial_dims=2,
        max_epochs=EPOCHS,
        batch_size=BATCH,
        learning_rate=0.05,
        patience=10,
        seed=3,
        threads=1,
    )


def _hooks() -> LoopHooks:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(SAMPLES, 1, 4, 4)).astype(np.float32))
    y = (x[:, 0, 0, 0] + x[:, 0, 1, 1] > 0).long()

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))

    def batches(
        generator: torch.Generator, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(SAMPLES, generator=generator)
        for i in range(0, SAMPLES, BATCH):
            idx = order[i : i + BATCH]
            # per-sample augmentation drawn from the loop's generator
            yield x[idx] + 0.1 * torch.randn(x[idx].shape, generator=generator), y[idx]

    def validate(trained: TrainedEpoch) -> tuple[dict[str, float], tuple[float, float]]:
        with torch.no_grad():
            out = trained.model(x)
        loss = float(nn.functional.cross_entropy(out, y))
        accuracy = float((out.argmax(1) == y).float().mean())
        return {"val_loss": loss, "val_accuracy": accuracy}, (accuracy, -loss)

    def final(best: dict[str, torch.Tensor] | None) -> nn.Module:
        model = build()
        if best is not None:
            model.load_state_dict(best)
        return model

    return LoopHooks(
        build_model=build,
        make_optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=0.05),
        epoch_batches=batches,
        loss=nn.functional.cross_entropy,
        validate=validate,
        final_model=final,
        tolerance=0.0,
    )


def _record(result: FitResult) -> dict[str, object]:
    return {
        "params": {k: v.flatten().tolist() for k, v in result.model.state_dict().items()},
        "history": [{k: v for k, v in row.items() if k != "seconds"} for row in result.history],
        "best_epoch": result.best_epoch,
    }


def main(out: Path, mode: str) -> None:
    """One rank: fit with the state in ``out/state_rank{R}``; record to ``out/rank{R}.json``.

    ``mode``: "whole" trains all epochs; "cut" stops rank 0 after epoch 2 (its state saved);
    "resume" resumes.
    """
    rank = int(os.environ["RANK"])

    def on_epoch(row: dict[str, float]) -> None:
        if mode == "cut" and rank == 0 and row["epoch"] == 2:
            raise SystemExit(3)

    state = out / f"state_rank{rank}"
    result = fit(_config(), _hooks(), on_epoch=on_epoch, state_dir=state, resume=mode == "resume")
    (out / f"rank{rank}.json").write_text(json.dumps(_record(result)))


def _torchrun(out: Path, mode: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", __file__, str(out), mode]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDSIGHT_DDP_TIMEOUT_S": "120"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_ranks_train_the_one_process_model_and_resume_exactly(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    whole.mkdir()
    done = _torchrun(whole, "whole")
    assert done.returncode == 0, done.stderr[-3000:]
    zero, one = _ranks(whole)
    assert zero == one  # same weights, same history (validated on rank 0, broadcast) on both
    # only rank 0 wrote its state; rank 1 was given a folder of its own and left it untouched
    assert (whole / "state_rank0" / "last.safetensors").is_file()
    assert not (whole / "state_rank1").exists()

    single = _record(fit(_config(), _hooks()))
    assert [r["epoch"] for r in zero["history"]] == list(range(1, EPOCHS + 1))
    assert zero["best_epoch"] == single["best_epoch"]
    for name, values in single["params"].items():  # type: ignore[union-attr]
        np.testing.assert_allclose(zero["params"][name], values, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(zero["history"], single["history"], strict=True):  # type: ignore[arg-type]
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key

    cut = tmp_path / "cut"
    cut.mkdir()
    assert _torchrun(cut, "cut").returncode != 0
    saved = json.loads((cut / "state_rank0" / "last.json").read_text())
    assert saved["epoch"] == 2
    resumed = _torchrun(cut, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _ranks(cut) == [zero, zero]  # resumed on both ranks to the uninterrupted weights


if __name__ == "__main__":  # one rank under torchrun
    main(Path(sys.argv[1]), sys.argv[2])
