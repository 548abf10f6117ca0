"""``--engine local``: a process pool on this machine, one model load per worker process.

`concurrent.futures.ProcessPoolExecutor` (standard library) runs `predict_series` in
``jobs`` worker processes, each loading the run's model once in its initializer; with one
job the inputs are predicted in this process, one after another. At most ``2 x jobs``
inputs are in flight, so a manifest of any length never queues more than that (memory is
bounded by the workers, not by the archive). Workers start with ``spawn``: the parent has
imported torch, and a forked copy of its thread pools can hang. Each worker loads the model
when its first input that is not yet done arrives (`RunModel`).

A worker that dies (a decoder crashing on a malformed file, the kernel's OOM killer) breaks
a `ProcessPoolExecutor` as a whole. The inputs that were in flight then go to a fresh pool
one at a time: one that kills its worker again, alone, is failed with that reason, the
others are predicted, and the batch goes on, so one poisonous input never stops it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from medsight.batch.series_prediction import RunModel, SeriesOutcome, predict_series
from medsight.hardware import usable_cores

#: the reason given for an input whose worker died while predicting it, alone
WORKER_DIED = "the worker process predicting it died (a crash, or out of memory)"
#: the model of a worker process, set by its initializer (one per process)
_WORKER: dict[str, RunModel] = {}


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
        InputError: the run's model cannot be loaded (outputs already written stay, and a
            rerun resumes after them).
    """
    if jobs <= 1:
        model = RunModel(run_dir, torch_threads(1))
        for index, source in enumerate(inputs):
            outcome = predict_series(model, index, source, model_sha256, out)
            if on_outcome:
                on_outcome(outcome)
            yield outcome
        return
    todo: Iterator[tuple[int, Path]] = iter(enumerate(inputs))
    suspects: list[tuple[int, Path]] = []  # in flight when a worker died
    job = (model_sha256, out, on_outcome)
    while True:
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(run_dir), torch_threads(jobs)),
        )
        try:
            while suspects:
                index, source = suspects.pop(0)
                if (yield from _drain(pool, iter([(index, source)]), 1, *job)):
                    failed = SeriesOutcome(index, "failed", None, WORKER_DIED)
                    if on_outcome:
                        on_outcome(failed)
                    yield failed
                    break  # this pool is broken: the next suspects get a fresh one
            else:
                suspects = yield from _drain(pool, todo, 2 * jobs, *job)
                if not suspects:
                    return
        finally:
            # an error or an interrupted caller: queued inputs are dropped, not predicted
            pool.shutdown(wait=True, cancel_futures=True)


def _drain(
    pool: ProcessPoolExecutor,
    items: Iterator[tuple[int, Path]],
    window: int,
    model_sha256: str,
    out: Path,
    on_outcome: Callable[[SeriesOutcome], None] | None,
) -> Generator[SeriesOutcome, None, list[tuple[int, Path]]]:
    """Predict ``items`` with at most ``window`` in flight; return those lost to a dead worker.

    At most ``window`` inputs are queued at a time, so memory does not grow with the archive.
    """
    pending: dict[Future[SeriesOutcome], tuple[int, Path]] = {}
    while True:
        for index, source in items:
            try:
                future = pool.submit(_predict_in_worker, index, str(source), model_sha256, str(out))
            except BrokenProcessPool:
                return [(index, source), *pending.values()]
            pending[future] = (index, source)
            if len(pending) >= window:
                break
        if not pending:
            return []
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        lost = []
        for future in finished:
            item = pending.pop(future)
            try:
                outcome = future.result()
            except BrokenProcessPool:
                lost.append(item)
                continue
            if on_outcome:
                on_outcome(outcome)
            yield outcome
        if lost:
            # the other inputs in flight: those whose result arrived before the crash count
            for future, item in list(pending.items()):
                if future.done() and future.exception() is None:
                    outcome = future.result()
                    if on_outcome:
                        on_outcome(outcome)
                    yield outcome
                else:
                    lost.append(item)
            return lost
