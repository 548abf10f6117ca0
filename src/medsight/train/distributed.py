"""Data-parallel training under ``torchrun``: one model, W processes, Lightning Fabric's DDP.

``torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT] -m medsight train ...``
starts W = N x M copies of the command; `torchrun_launch` reads the variables torchrun sets
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) and `start_ddp_fabric` starts
Fabric with its ``ddp`` strategy over them, on CPU with gloo (`BACKEND`). GPUs (NCCL) are
not wired yet: the tasks' hooks keep their tensors (class weights, validation inputs) on the
CPU. Without torchrun, or with a world of one, nothing here runs: the loop starts the same
single-process Fabric as before and no process group exists.

Why the engine shards batches itself instead of a ``DistributedSampler``: the tasks do not
hand the loop a dataset or a DataLoader. They yield an epoch's batches drawn from the loop's
one seeded ``torch.Generator`` (`medsight.train.loop`), augmentation included, so that the
same seed gives the same weights and ``--resume`` lands on the uninterrupted run's weights.
Every rank holds the same generator state, so every rank draws the same global batch; rank r
keeps samples r, r+W, r+2W, ... of it (`rank_share`). That is what a sampler's shared seed
and ``set_epoch`` achieve (the order changes every epoch, identically on every rank, and is
restored on resume), and more: a W-rank run trains on exactly the samples and augmentations
of the one-process run with the same seed, since augmentation parameters are drawn per
sample, not per rank. Nothing is padded, so no sample counts twice. The cost is that each
rank assembles and augments the whole global batch before keeping its share (0.8% of a
one-process imaging epoch, measured; the forward and backward passes, ~87%, are split).
What is per rank: the global torch random state (dropout), reseeded every epoch from
(seed, rank, epoch) by `seed_rank`, so it is different on every rank and the same after a
resume.

The batch rule: ``--batch-size`` is the global batch; each rank computes ``batch / W`` of it
(the first ``batch mod W`` ranks one more). Each rank's mean loss is weighted by its share
of the batch (`share_weight`), so DDP's average of the ranks' gradients is the gradient of
the global batch's mean loss, as in a one-process run (exactly for losses that are plain
per-sample means; a class-weighted mean is weighted per rank). The learning rate is therefore
not scaled with W: same global batch, same rate. A global batch smaller than W (a last short
batch) is skipped on every rank, so no rank computes on nothing. Batch norm computes its
statistics on each rank's share (no SyncBatchNorm: it would add a collective per layer), and
DDP gives every rank rank 0's running statistics at each step.

Validation: rank 0 scores the full validation set with the epoch's weights (identical on
every rank) and broadcasts the metrics and the early-stopping key; the other ranks wait.
Sharding validation would need every task's ``validate`` to gather predictions with their
case indices and drop the sampler's padding; a validation pass is ~11% of an imaging epoch
on a few dozen cases, and one process computing it gives exactly the number a one-process
``medsight evaluate`` computes. Every decision that must be the same on every rank (stop
early, out of time, resume or not) is taken on rank 0 and broadcast (`decided_on_rank_zero`),
so a clock or a file that differs between ranks cannot split them into a hang.

Only global rank 0 writes the run folder (settings, history, TensorBoard, checkpoints; the
CLI gives other ranks a scratch folder for the task's own files, `medsight.cli.train`);
``--resume`` reads the saved state on rank 0 and broadcasts it, so other nodes need the data
but not the run folder. A process-group timeout (``MEDSIGHT_DDP_TIMEOUT_S``, default 1800 s,
torch's own default) makes a rank whose peer stopped answering fail with `PeerLostError`
instead of waiting for ever; a peer that died closes its connections, which fails at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy
from torch import nn

from medsight.errors import InputError
from medsight.train.training_state import LoopState, start_or_resume

#: the process-group timeout in seconds (a positive number)
TIMEOUT_ENV = "MEDSIGHT_DDP_TIMEOUT_S"
#: torch's own default process-group timeout
DEFAULT_TIMEOUT_S = 1800.0
#: the Fabric strategy a torchrun launch trains with (recorded in ``train_config.json``)
STRATEGY = "ddp"
#: the process-group backend: processes train on CPU (the task hooks keep their tensors there)
BACKEND = "gloo"
#: Fabric's precision names the loop uses
Precision = Literal["bf16-mixed", "32-true"]

T = TypeVar("T")


class PeerLostError(RuntimeError):
    """Another rank stopped answering (died, or hung past the process-group timeout)."""


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun launch."""

    world_size: int
    #: global rank, 0 ... world_size - 1
    rank: int
    local_rank: int
    #: processes on this node (torchrun's ``--nproc_per_node``)
    local_world_size: int

    @property
    def num_nodes(self) -> int:
        """Nodes in the launch (torchrun starts the same number of processes on each)."""
        return self.world_size // self.local_world_size


def _env_int(environ: Mapping[str, str], name: str) -> int:
    value = environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise InputError(
            f"{name}={value!r}: torchrun sets it to an integer; start with torchrun"
        ) from None


def torchrun_launch(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The torchrun launch this process belongs to, or None for a single process.

    Args:
        environ: the environment (default ``os.environ``).

    Raises:
        InputError: ``WORLD_SIZE`` is above 1 but torchrun's other variables are missing or
            inconsistent (a hand-made environment; torchrun always sets them together).
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ or _env_int(environ, "WORLD_SIZE") <= 1:
        return None
    world = _env_int(environ, "WORLD_SIZE")
    rank, local_rank = _env_int(environ, "RANK"), _env_int(environ, "LOCAL_RANK")
    local_world = _env_int(environ, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in environ else world
    if not (0 <= rank < world and 0 <= local_rank < local_world <= world):
        raise InputError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_world}, "
            f"WORLD_SIZE={world}: not a consistent torchrun launch"
        )
    if world % local_world:
        raise InputError(
            f"WORLD_SIZE={world} is not a multiple of LOCAL_WORLD_SIZE={local_world}: "
            "start the same number of processes on every node"
        )
    return Launch(world, rank, local_rank, local_world)


def timeout_s(environ: Mapping[str, str] | None = None) -> float:
    """The process-group timeout: ``MEDSIGHT_DDP_TIMEOUT_S``, else `DEFAULT_TIMEOUT_S`.

    Raises:
        InputError: the variable is set to something other than a positive number.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or not np.isfinite(seconds):
        raise InputError(f"{TIMEOUT_ENV}={raw!r}: give the timeout as a positive number of seconds")
    return seconds


def start_ddp_fabric(launch: Launch, precision: Precision) -> Fabric:
    """A Fabric training data-parallel over ``launch``'s processes, process group started.

    CPU processes talk over gloo (`BACKEND`). Fabric reads the ranks and the rendezvous
    address from torchrun's variables; the process group is created once per process, on
    the first call, and later fits (models, folds) in the process reuse it.

    Raises:
        InputError: ``MEDSIGHT_DDP_TIMEOUT_S`` is unusable.
        PeerLostError: the rendezvous with the other ranks failed or timed out.
    """
    if launch.rank != 0:
        # Lightning announces every rank's start; only rank 0 talks to the user
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    # a 1-channel first convolution's gradient is channels-last in a layout that differs from
    # its bucket's only along that size-1 axis (the same memory order): DDP warns all the same
    warnings.filterwarnings(
        "ignore",
        message=r"Grad strides do not match bucket view strides(?s:.*)sizes\(\) = \[\d+, 1, ",
    )
    strategy = DDPStrategy(process_group_backend=BACKEND, timeout=timedelta(seconds=timeout_s()))
    fabric = Fabric(
        accelerator="cpu",
        strategy=strategy,
        devices=launch.local_world_size,
        num_nodes=launch.num_nodes,
        precision=precision,
    )
    try:
        fabric.launch()
    except (RuntimeError, ValueError) as exc:  # rendezvous failed or timed out
        raise PeerLostError(f"rank {launch.rank}: could not join the other ranks ({exc})") from None
    return fabric


def launch_record(launch: Launch, global_batch: int) -> dict[str, Any]:
    """The ``distributed`` entry of ``train_config.json``: how the run was spread.

    ``per_rank_batch`` is the largest share (`rank_share`); ``learning_rate_rule`` says the
    rate is the global batch's, unscaled.
    """
    return {
        "strategy": STRATEGY,
        "backend": BACKEND,
        "world_size": launch.world_size,
        "num_nodes": launch.num_nodes,
        "global_batch": global_batch,
        "per_rank_batch": -(-global_batch // launch.world_size),
        "learning_rate_rule": "unscaled: the global batch and its rate are the one-process run's",
    }


def _share(value: Any, rank: int, world: int, size: int) -> Any:
    if isinstance(value, torch.Tensor):
        if value.ndim == 0 or value.shape[0] != size:
            raise ValueError(
                f"a batch tensor of shape {tuple(value.shape)} has no sample axis of {size}"
            )
        return value[rank::world]
    if isinstance(value, dict):
        return {key: _share(item, rank, world, size) for key, item in value.items()}
    raise TypeError(f"cannot shard a batch input of type {type(value).__name__}")


def rank_share(
    batch: tuple[Any, torch.Tensor], rank: int, world: int
) -> tuple[tuple[Any, torch.Tensor], int] | None:
    """This rank's samples of a global batch: samples ``rank, rank + world, ...``.

    Args:
        batch: ``(input, target)``; the input a tensor or a dict of tensors, every tensor
            with the samples on axis 0.
        rank: global rank.
        world: world size.

    Returns:
        The share and the global batch size, or None when the global batch has fewer samples
        than ranks (every rank skips it, so all take the same number of steps).
    """
    x, y = batch
    size = int(y.shape[0])
    if size < world:
        return None
    return (_share(x, rank, world, size), _share(y, rank, world, size)), size


def share_weight(share: int, global_batch: int, world: int) -> float:
    """The factor on a rank's mean loss that makes DDP's gradient average the global batch's.

    DDP averages the W ranks' gradients; rank r's mean loss over ``n_r`` samples weighted by
    ``n_r W / N`` gives ``(1/N) sum_i grad l_i``, the global mean's gradient (exactly, for
    losses that are per-sample means).
    """
    return share * world / global_batch


def seed_rank(seed: int, rank: int, epoch: int) -> None:
    """Seed the global torch random state (dropout) for this rank's epoch."""
    state = np.random.SeedSequence([seed, rank, epoch]).generate_state(1, dtype=np.uint64)[0]
    torch.manual_seed(int(state))


def decided_on_rank_zero(fabric: Fabric, decide: Callable[[], T]) -> T:
    """``decide()`` computed on rank 0 and broadcast to every rank.

    An `InputError` raised on rank 0 is raised on every rank (with rank 0's message), so a
    refusal there (e.g. nothing to resume) stops all ranks instead of leaving them waiting.
    """
    outcome: tuple[bool, Any] = (True, None)
    if fabric.is_global_zero:
        try:
            outcome = (True, decide())
        except InputError as exc:
            outcome = (False, str(exc))
    outcome = collective(fabric, lambda: fabric.broadcast(outcome, src=0))
    ok, value = outcome
    if not ok:
        raise InputError(value)
    return value


#: what gloo, NCCL and the rendezvous store say when a peer died or stopped answering (they
#: raise plain RuntimeErrors: "Connection closed by peer", "Timed out waiting 5000ms ...")
PEER_FAILURE_SIGNS = ("gloo", "NCCL", "TCPStore", "Connection closed", "Connection reset",
                      "Broken pipe", "Timed out", "timed out")  # fmt: skip


def collective(fabric: Fabric, call: Callable[[], T]) -> T:
    """Run a call that talks to the other ranks; their failure becomes `PeerLostError`.

    Other errors (a bug, a wrong shape) pass unchanged.
    """
    try:
        return call()
    except PeerLostError:
        raise
    except RuntimeError as exc:
        if isinstance(exc, torch.distributed.DistError) or any(
            sign in str(exc) for sign in PEER_FAILURE_SIGNS
        ):
            raise peer_lost(fabric, exc) from None
        raise


def peer_lost(fabric: Fabric, exc: BaseException) -> PeerLostError:
    """The one-line error for a collective that failed on ``fabric``'s rank."""
    text = str(exc).strip()
    # gloo's first sentence ("Connection closed by peer [host]:port"), without its source path
    first = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0]) if text else type(exc).__name__
    first = first.split(". ")[0].rstrip(".")
    return PeerLostError(
        f"rank {fabric.global_rank} of {fabric.world_size}: another rank stopped answering "
        f"(died, or hung past {TIMEOUT_ENV}={timeout_s():g} s): {first[:200]}"
    )


def all_ranks_agree(fabric: Fabric, mine: bool) -> bool:
    """Whether ``mine`` is true on every rank."""
    flag = torch.tensor([0.0 if mine else 1.0])
    total = collective(fabric, lambda: fabric.all_reduce(flag, reduce_op="sum"))
    return float(torch.as_tensor(total).sum()) == 0.0


class PrecisionOnly(nn.Module):
    """The bare network run at the Fabric's precision, without the DDP wrapper.

    Rank 0 validates alone; a forward through DDP would broadcast buffers (batch-norm
    statistics) to ranks that are not listening, and a forward with gradients enabled
    would leave DDP expecting a backward. This wrapper converts inputs and outputs and
    autocasts exactly as Fabric's own wrapper does, through the precision plugin.
    """

    def __init__(self, network: nn.Module, fabric: Fabric) -> None:
        super().__init__()
        self.network = network
        self._precision = fabric.strategy.precision

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The network's output at the training precision (floating outputs in fp32)."""
        args, kwargs = self._precision.convert_input((args, kwargs))
        with self._precision.forward_context():
            output = self.network(*args, **kwargs)
        return self._precision.convert_output(output)


def start_or_resume_on_all_ranks(
    fabric: Fabric,
    state_dir: Path | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config_json: str,
    resume: bool,
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """`start_or_resume` on rank 0, its outcome given to every rank.

    Rank 0 owns the run folder: it decides whether to resume (its ``resume`` and
    ``state_dir``) and loads the saved state; model, optimizer, batch generator and loop
    scalars are then broadcast, so every rank continues from the same point whatever its own
    folder holds.

    Raises:
        InputError: rank 0 refused the resume (nothing to resume, other settings), or a rank
            was started with other settings than rank 0.
    """

    def load() -> dict[str, Any]:
        loop, best = start_or_resume(state_dir, model, optimizer, generator, config_json, resume)
        shared: dict[str, Any] = {"loop": asdict(loop), "config_json": config_json}
        if loop.epoch:  # a fresh model needs nothing: DDP broadcasts rank 0's weights
            shared |= {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "best": best,
            }
        return shared

    shared = decided_on_rank_zero(fabric, load)
    if not all_ranks_agree(fabric, json.loads(shared["config_json"]) == json.loads(config_json)):
        raise InputError(
            "the ranks were started with different training settings: start every rank with "
            "the same command and data"
        )
    loop = LoopState(**{**shared["loop"], "best_key": tuple(shared["loop"]["best_key"])})
    if "model" not in shared:
        return loop, None
    if not fabric.is_global_zero:
        model.load_state_dict(shared["model"])
        optimizer.load_state_dict(shared["optimizer"])
        generator.set_state(shared["generator"])
    return loop, shared["best"]


def setup_on_all_ranks(
    fabric: Fabric, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[Any, Any]:
    """Fabric's ``setup`` under DDP: wraps the model, checks every rank built the same
    network and broadcasts rank 0's weights. Returns what ``Fabric.setup`` returns.

    Raises:
        InputError: the ranks built networks of different shapes (other data or plan).
        PeerLostError: another rank stopped answering.
    """
    try:
        wrapped, wrapped_optimizer = collective(fabric, lambda: fabric.setup(model, optimizer))
    except RuntimeError as exc:
        if "appears not to match" not in str(exc):
            raise
        raise InputError(
            f"rank {fabric.global_rank}: the ranks built different networks ("
            f"{str(exc).splitlines()[0][:160]}): start every rank with the same command, data "
            "and plan"
        ) from None
    return wrapped, wrapped_optimizer
