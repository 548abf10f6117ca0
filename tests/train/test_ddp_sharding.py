"""Data-parallel pieces that need no second process: reading torchrun's launch, the timeout,
sharing a global batch between ranks, the loss weights, per-rank seeds, and who writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from medsight.errors import InputError
from medsight.train.config import LoopConfig
from medsight.train.distributed import (
    Launch,
    PeerLostError,
    collective,
    rank_share,
    seed_rank,
    share_weight,
    timeout_s,
    torchrun_launch,
)
from medsight.train.loop import FitResult
from medsight.train.run_folder import fit_in_run_folder

TORCHRUN = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}


def test_a_single_process_is_not_a_launch() -> None:
    assert torchrun_launch({}) is None
    assert torchrun_launch({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is None


def test_torchruns_variables_give_ranks_and_nodes() -> None:
    launch = torchrun_launch(TORCHRUN)
    assert launch == Launch(world_size=4, rank=3, local_rank=1, local_world_size=2)
    assert launch.num_nodes == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RANK": "4"}, "not a consistent torchrun launch"),
        ({"RANK": "x"}, "RANK='x'"),
        ({"LOCAL_WORLD_SIZE": "3"}, "not a multiple of LOCAL_WORLD_SIZE=3"),
    ],
)
def test_a_broken_launch_is_one_clear_error(change: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        torchrun_launch({**TORCHRUN, **change})


def test_the_timeout_comes_from_the_environment() -> None:
    assert timeout_s({}) == 1800.0
    assert timeout_s({"MEDSIGHT_DDP_TIMEOUT_S": " 20 "}) == 20.0
    for bad in ("soon", "0", "-5", "inf", "nan"):
        with pytest.raises(InputError, match="MEDSIGHT_DDP_TIMEOUT_S"):
            timeout_s({"MEDSIGHT_DDP_TIMEOUT_S": bad})


def test_each_sample_of_a_global_batch_goes_to_exactly_one_rank() -> None:
    x = {"codes": torch.arange(10).reshape(5, 2), "times": torch.arange(5.0)}
    y = torch.tensor([10, 11, 12, 13, 14])
    shares = [rank_share((x, y), rank, 2) for rank in (0, 1)]
    assert all(share is not None for share in shares)
    (x0, y0), n0 = shares[0]  # type: ignore[misc]
    (x1, y1), n1 = shares[1]  # type: ignore[misc]
    assert n0 == n1 == 5
    assert y0.tolist() == [10, 12, 14] and y1.tolist() == [11, 13]
    assert x0["codes"].tolist() == [[0, 1], [4, 5], [8, 9]] and x1["times"].tolist() == [1.0, 3.0]
    assert rank_share((torch.zeros(1, 3), torch.zeros(1)), 0, 2) is None  # skipped everywhere
    with pytest.raises(ValueError, match="no sample axis"):
        rank_share((torch.zeros(4, 3), torch.zeros(5)), 0, 2)


def test_weighted_rank_losses_average_to_the_global_batch_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])

    def gradient(inputs: torch.Tensor, target: torch.Tensor, factor: float) -> torch.Tensor:
        model.zero_grad()
        (nn.functional.cross_entropy(model(inputs), target) * factor).backward()
        return model.weight.grad.clone()  # type: ignore[union-attr]

    whole = gradient(x, y, 1.0)
    ranks = []
    for rank in (0, 1):
        (xr, yr), size = rank_share((x, y), rank, 2)  # type: ignore[misc]
        ranks.append(gradient(xr, yr, share_weight(len(yr), size, 2)))
    torch.testing.assert_close((ranks[0] + ranks[1]) / 2, whole)  # what DDP's average gives
    unweighted = (gradient(x[0::2], y[0::2], 1.0) + gradient(x[1::2], y[1::2], 1.0)) / 2
    assert not torch.allclose(unweighted, whole)  # the 3 + 2 split needs the weights


def test_ranks_draw_different_dropout_and_the_same_after_a_resume() -> None:
    seed_rank(5, 0, 3)
    first = torch.rand(4)
    seed_rank(5, 1, 3)
    other_rank = torch.rand(4)
    seed_rank(5, 0, 3)
    assert torch.equal(torch.rand(4), first)
    assert not torch.equal(first, other_rank)


def _fake_fit(calls: list[bool]):  # noqa: ANN202 - a TaskFit
    def fit(*, on_epoch, state_dir: Path, resume: bool) -> FitResult:  # noqa: ANN001
        calls.append(resume)
        on_epoch({"epoch": 1.0, "train_loss": 0.5})
        return FitResult(nn.Linear(1, 1))

    return fit


def test_only_rank_zero_writes_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = LoopConfig(model_name="tiny", batch_size=5)
    calls: list[bool] = []
    for name, value in {**TORCHRUN, "RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    fit_in_run_folder(tmp_path / "rank1", config, _fake_fit(calls))
    assert calls == [False] and not (tmp_path / "rank1").exists()

    monkeypatch.setenv("RANK", "0")
    fit_in_run_folder(tmp_path / "rank0", config, _fake_fit(calls))
    saved = json.loads((tmp_path / "rank0" / "train_config.json").read_text())
    assert saved.pop("distributed") == {
        "strategy": "ddp",
        "backend": "gloo",
        "world_size": 4,
        "num_nodes": 2,
        "global_batch": 5,
        "per_rank_batch": 2,
        "learning_rate_rule": "unscaled: the global batch and its rate are the one-process run's",
    }
    assert LoopConfig.model_validate(saved) == config
    assert (tmp_path / "rank0" / "history.csv").read_text().startswith("epoch,train_loss")


def test_a_lost_peer_is_one_clear_line_and_a_bug_stays_a_bug() -> None:
    fabric = SimpleNamespace(global_rank=0, world_size=2)

    def closed() -> None:
        raise RuntimeError(
            "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by "
            "peer [127.0.0.1]:16076. This is typically caused by a remote worker crashing.\nmore"
        )

    with pytest.raises(PeerLostError) as lost:
        collective(fabric, closed)  # type: ignore[arg-type]
    assert str(lost.value) == (
        "rank 0 of 2: another rank stopped answering (died, or hung past "
        "MEDSIGHT_DDP_TIMEOUT_S=1800 s): Connection closed by peer [127.0.0.1]:16076"
    )
    assert "\n" not in str(lost.value)

    def bug() -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 4x2)")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        collective(fabric, bug)  # type: ignore[arg-type]
