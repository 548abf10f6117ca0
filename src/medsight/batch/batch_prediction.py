"""`predict_batch`: one batch over an archive with the chosen engine, and its summary.

The run's model digest is computed once here; the engine predicts each input into
``OUT/<input digest>-<model digest>/`` and this function collects the outcomes into
``OUT/batch_summary.json``, which is written even when the batch stops early (a model
that cannot load, an interrupt): what finished stays done, and a rerun resumes after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from medsight.batch.batch_summary import BatchSummary
from medsight.batch.series_keys import model_digest
from medsight.batch.series_prediction import SeriesOutcome
from medsight.errors import InputError

ENGINES = ("local", "ray")


def predict_batch(
    run_dir: Path,
    inputs: list[Path],
    out: Path,
    engine: str = "local",
    jobs: int | None = None,
    on_outcome: Callable[[SeriesOutcome], None] | None = None,
) -> BatchSummary:
    """Predict every input with ``run_dir``'s model into ``out``, skipping finished ones.

    Args:
        run_dir: The run folder.
        inputs: Inputs in batch order (manifests already expanded).
        out: The batch's output folder (created if missing).
        engine: ``local`` (a process pool here) or ``ray`` (Ray Data).
        jobs: Worker processes (local) or model actors (ray); None: one per core.
        on_outcome: Called with each input's outcome as it ends (progress).

    Returns:
        The summary, also written to ``OUT/batch_summary.json``.

    Raises:
        InputError: an unknown engine, a folder that is not a run or whose model cannot be
            loaded, ``out`` is a file, or Ray missing for ``ray``.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    model_sha256 = model_digest(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    if engine == "ray":
        from medsight.batch.ray_engine import import_ray, predict_ray

        import_ray()  # before any work: a missing extra is one line, not a traceback
        workers = jobs or 0  # set to the actors started once the cluster is known

        def actors_started(n: int) -> None:
            summary.jobs = n

        stream = predict_ray(run_dir, inputs, model_sha256, out, jobs, on_outcome, actors_started)
    else:
        from medsight.batch.local_engine import predict_local
        from medsight.hardware import usable_cores

        workers = jobs or min(usable_cores(), max(1, len(inputs)))
        stream = predict_local(run_dir, inputs, model_sha256, out, workers, on_outcome)
    summary = BatchSummary(engine, workers, model_sha256, len(inputs))
    started = time.perf_counter()
    try:
        for outcome in stream:
            summary.outcomes.append(outcome)
    finally:
        summary.seconds = time.perf_counter() - started
        summary.write(out)
    return summary
