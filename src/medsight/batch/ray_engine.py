"""``--engine ray``: Ray Data streams the archive through a pool of model actors.

Two stages, as Ray Data's batch-inference recipe has them. A CPU stage (stateless tasks)
hashes each input into its output name and marks the ones already done; a pool of actors
(`ray.data.ActorPoolStrategy`), each loading the run's model once (`RunModel`), runs
`predict_series` on the rest, which reads, preprocesses, predicts and writes the input's
folder atomically (the same function ``--engine local`` runs, so both write the same
files). Ray Data executes the stages as a stream with backpressure: only a few blocks of
inputs are in flight, so memory stays bounded however long the manifest, and the driver
sees outcomes as they end.

``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` (or one already initialised in
this process), else starts a local one with this machine's cores, and shuts down only
what it started. Ray is an optional extra (``pip install medsight[ray]``) and is imported
only here. The predictors run on the CPU (the tasks' loaded models have no device option),
so the actors ask Ray for CPUs only.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medsight.batch.local_engine import torch_threads
from medsight.batch.series_prediction import (
    RunModel,
    SeriesOutcome,
    failure_reason,
    is_done,
    predict_series,
    series_key,
)
from medsight.errors import InputError
from medsight.hardware import usable_cores

#: inputs per Ray Data block: small blocks keep the stream moving and memory flat
BLOCK_INPUTS = 16
#: CPUs the hashing stage's tasks ask for: reading and hashing is I/O-bound, and the rest
#: of the cluster's CPUs go to the model actors
KEY_STAGE_CPUS = 0.5
INSTALL_HINT = "--engine ray needs Ray: pip install medsight[ray]"
_REMOTE_INPUT_ERROR = re.compile(r"^medsight\.errors\.InputError: (.+)$", re.MULTILINE)


def import_ray() -> Any:
    """The ``ray`` module with Ray Data.

    Raises:
        InputError: Ray (or Ray Data) is not installed; the message says how to install it.
    """
    try:
        import ray
        import ray.data  # noqa: F401  (the ``data`` extra: pandas, pyarrow)
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


def _key_stage(batch: dict[str, np.ndarray], model_sha256: str, out: str) -> dict[str, Any]:
    keys, reasons, done = [], [], []
    for source in batch["path"]:
        try:
            key = series_key(Path(source), model_sha256)
            keys.append(key)
            reasons.append("")
            done.append(is_done(Path(out), key))
        except InputError as exc:
            keys.append("")
            reasons.append(failure_reason(exc, Path(source)))
            done.append(False)
    return {**batch, "key": np.array(keys), "reason": np.array(reasons), "done": np.array(done)}


class SeriesPredictorActor:
    """A Ray actor holding one loaded model; predicts the inputs of each batch it is sent."""

    def __init__(self, run_dir: str, model_sha256: str, out: str, threads: int) -> None:
        self.model = RunModel(Path(run_dir), threads)
        self.model_sha256 = model_sha256
        self.out = Path(out)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = []
        for index, source, key, reason, done in zip(
            batch["index"], batch["path"], batch["key"], batch["reason"], batch["done"], strict=True
        ):
            index = int(index)
            if reason:
                outcomes.append(SeriesOutcome(index, "failed", None, str(reason)))
            elif done:
                outcomes.append(SeriesOutcome(index, "skipped", str(key)))
            else:
                outcomes.append(
                    predict_series(
                        self.model, index, Path(source), self.model_sha256, self.out, str(key)
                    )
                )
        return {
            "index": np.array([o.index for o in outcomes]),
            "status": np.array([o.status for o in outcomes]),
            "key": np.array([o.key or "" for o in outcomes]),
            "reason": np.array([o.reason or "" for o in outcomes]),
            "seconds": np.array([o.seconds for o in outcomes]),
        }


def predict_ray(
    run_dir: Path,
    inputs: list[Path],
    model_sha256: str,
    out: Path,
    actors: int | None,
    on_outcome: Callable[[SeriesOutcome], None] | None = None,
    on_actors: Callable[[int], None] | None = None,
) -> Iterator[SeriesOutcome]:
    """Predict every input into ``out`` on a Ray cluster; yield outcomes as they end.

    Args:
        run_dir: The run folder (every Ray node must see it, and the inputs and ``out``, at
            the same paths: a shared file system on a multi-node cluster).
        inputs: The inputs, in batch order.
        model_sha256: The run's model digest.
        out: The batch's output folder.
        actors: Model actors (None: one per CPU of the cluster).
        on_outcome: Called with each outcome as it ends (progress).
        on_actors: Called with the number of model actors once the cluster is known.

    Yields:
        One outcome per input, in the order they finish.

    Raises:
        InputError: Ray is not installed.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        # a cluster's own settings stand when joining one; a local one gets this machine
        local = {} if _joins_cluster() else {"num_cpus": usable_cores(), "include_dashboard": False}
        ray.init(logging_level=logging.WARNING, log_to_driver=False, **local)
    try:
        yield from _stream(ray, run_dir, inputs, model_sha256, out, actors, on_outcome, on_actors)
    finally:
        if started:
            ray.shutdown()


def _joins_cluster() -> bool:
    import os

    return bool(os.environ.get("RAY_ADDRESS"))


def _stream(
    ray: Any,
    run_dir: Path,
    inputs: list[Path],
    model_sha256: str,
    out: Path,
    actors: int | None,
    on_outcome: Callable[[SeriesOutcome], None] | None,
    on_actors: Callable[[int], None] | None,
) -> Iterator[SeriesOutcome]:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # medsight's own bar counts finished inputs
    context.print_on_execution_start = False
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    size = actors or max(1, int(cpus))
    if on_actors:
        on_actors(size)
    if not inputs:
        return
    actor_cpus = max(0.1, (cpus - KEY_STAGE_CPUS) / size)
    rows = [{"index": i, "path": str(p)} for i, p in enumerate(inputs)]
    # at least four blocks per actor (when there are that many inputs), so every actor works
    per_block = max(1, min(BLOCK_INPUTS, math.ceil(len(rows) / (4 * size))))
    dataset = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / per_block))
    dataset = dataset.map_batches(
        _key_stage,
        batch_size=per_block,
        batch_format="numpy",
        fn_kwargs={"model_sha256": model_sha256, "out": str(out)},
        num_cpus=KEY_STAGE_CPUS,
    )
    dataset = dataset.map_batches(
        SeriesPredictorActor,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=size),
        fn_constructor_kwargs={
            "run_dir": str(run_dir),
            "model_sha256": model_sha256,
            "out": str(out),
            "threads": torch_threads(size, max(1, int(cpus))),
        },
        num_cpus=actor_cpus,
    )
    for row in _rows(ray, dataset):
        outcome = SeriesOutcome(
            int(row["index"]),
            row["status"],
            row["key"] or None,
            row["reason"] or None,
            float(row["seconds"]),
        )
        if on_outcome:
            on_outcome(outcome)
        yield outcome


def _rows(ray: Any, dataset: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows; an actor's `InputError` (a model that cannot load) as itself.

    Ray Data re-raises an actor's exception in the driver as a `UserCodeException` whose
    text holds the remote traceback but not the exception object, so the error's sentence
    is taken from that text.
    """
    try:
        yield from dataset.iter_rows()
    except ray.exceptions.RayError as exc:
        found = _REMOTE_INPUT_ERROR.findall(str(exc))
        if not found:
            raise
        raise InputError(found[-1].strip()) from None
