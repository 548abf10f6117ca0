"""``--engine local``: a process pool on this machine, one model load per worker process.

`concurrent.futures.ProcessPoolExecutor` (standard library) runs `predict_series` in
``jobs`` worker processes, each loading the run's model once in its initializer; with one
job the inputs are predicted in this process, one after another. At most ``2 x jobs``
inputs are in flight, so a manifest of any length never queues more than that (memory is
bounded by the workers, not by the archive). Workers start with ``spawn``: the parent has
imported torch, and a forked copy of its thread pools can hang. Each worker loads the model
when its first input that is not yet done arrives (`RunModel`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from medsight.batch.series_prediction import RunModel, SeriesOutcome, predict_series
from medsight.errors import InputError

#: the model of a worker process, set by its initializer (one per process)
_WORKER: dict[str, RunModel] = {}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (macOS, Windows)
        return os.cpu_count() or 1


def torch_threads(jobs: int, cores: int | None = None) -> int:
    """Threads each of ``jobs`` workers gives PyTorch so that together they fill the cores."""
    return max(1, (cores or usable_cores()) // max(1, jobs))


def _start_worker(run_dir: str, threads: int) -> None:
    _WORKER["model"] = RunModel(Path(run_dir), threads)


def _predict_in_worker(index: int, source: str, model_sha256: str, out: str) -> SeriesOutcome:
    return predict_series(_WORKER["model"], index, Path(source), model_sha256, Path(out))


def predict_local(
    run_dir: Path,
    inputs: list[Path],
    model_sha256: str,
    out: Path,
    jobs: int,
    on_outcome: Callable[[SeriesOutcome], None] | None = None,
) -> Iterator[SeriesOutcome]:
    """Predict every input into ``out`` with ``jobs`` processes; yield outcomes as they end.

    Args:
        run_dir: The run folder.
        inputs: The inputs, in batch order (an outcome's ``index`` is a position here).
        model_sha256: The run's model digest.
        out: The batch's output folder.
        jobs: Worker processes (1: predict in this process).
        on_outcome: Called with each outcome as it ends (progress).

    Yields:
        One outcome per input, in the order they finish.

    Raises:
        InputError: the run's model cannot be loaded, or a worker process died; outputs
            already written stay, and a rerun resumes after them.
    """
    if jobs <= 1:
        model = RunModel(run_dir, torch_threads(1))
        for index, source in enumerate(inputs):
            outcome = predict_series(model, index, source, model_sha256, out)
            if on_outcome:
                on_outcome(outcome)
            yield outcome
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(str(run_dir), torch_threads(jobs)),
    )
    try:
        pending: set[Future[SeriesOutcome]] = set()
        queue = iter(enumerate(inputs))
        while True:
            for index, source in queue:
                pending.add(
                    pool.submit(_predict_in_worker, index, str(source), model_sha256, str(out))
                )
                if len(pending) >= 2 * jobs:
                    break
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    raise InputError(
                        f"{run_dir}: a worker process died (killed, or out of memory); "
                        "finished inputs are kept: rerun to resume"
                    ) from None
                if on_outcome:
                    on_outcome(outcome)
                yield outcome
    finally:
        # an error or an interrupted caller: queued inputs are dropped, not predicted
        pool.shutdown(wait=True, cancel_futures=True)
