"""The one per-input step both engines run: key, skip if done, predict, write atomically.

The local process pool and the Ray actors call `predict_series` with a `RunModel`, which
loads the run's model once (the task's `LoadedRun`, the object the service predicts with)
when the first input that is not yet done reaches it: a rerun over a finished archive loads
no model at all. Both engines thus write byte-identical outputs for the same input and model.

An input's folder ``OUT/<key>/`` holds ``result.json`` (the task's result record, the JSON
``medsight predict --json`` prints, plus the files the task wrote, such as a segmentation's
``segmentation/`` folder). It is written into a temporary folder beside it and renamed into
place only when whole, so a crash never leaves a folder that counts as done; a rerun skips
every input whose ``result.json`` exists.

A failure is reported with a reason that names no path and quotes no file content (paths in
an archive often carry patient names): an `InputError`'s sentence with the input's path
replaced by ``INPUT``, or, for anything else, only the exception's type.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from medsight.batch.series_keys import input_digest, output_name
from medsight.errors import InputError
from medsight.runs.atomic import atomic_dir
from medsight.tasks.registry import LoadedRun

RESULT_FILE = "result.json"
Status = Literal["done", "skipped", "failed"]
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s:;,'\")]+")
_MAX_REASON = 300


@dataclass(frozen=True)
class SeriesOutcome:
    """What became of one input: its position in the input list, never its path."""

    index: int
    status: Status
    #: the output folder's name (None when the input could not even be read)
    key: str | None = None
    #: why it failed (no path, no file content)
    reason: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        """The summary's entry for this input (absent fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class RunModel:
    """A run's model, loaded by its task the first time it is needed, then kept."""

    def __init__(self, run_dir: Path, torch_threads: int) -> None:
        self.run_dir = Path(run_dir)
        self.torch_threads = torch_threads
        self._loaded: LoadedRun | None = None

    def get(self) -> LoadedRun:
        """The loaded model (loaded now if this is the first call).

        Raises:
            InputError: the folder is not a run, its task is not registered, or its files
                cannot be loaded.
        """
        if self._loaded is None:
            import torch

            import medsight.modalities  # noqa: F401  (registers every task plug-in)
            from medsight.tasks import task_of_run

            torch.set_num_threads(self.torch_threads)
            self._loaded = task_of_run(self.run_dir).load(self.run_dir)
        return self._loaded


def failure_reason(exc: BaseException, source: Path) -> str:
    """One line saying why ``source`` failed, with no path and no file content."""
    if not isinstance(exc, InputError):
        return f"prediction failed ({type(exc).__name__})"
    text = str(exc)
    for spelling in sorted({str(source), str(Path(source).resolve())}, key=len, reverse=True):
        text = text.replace(spelling, "INPUT")
    text = _ABSOLUTE_PATH.sub("PATH", text).replace("\n", " ")
    return text[:_MAX_REASON]


def series_key(source: Path, model_sha256: str) -> str:
    """The output folder name of ``source`` under the model with digest ``model_sha256``.

    Raises:
        InputError: the input cannot be read.
    """
    return output_name(input_digest(source), model_sha256)


def is_done(out: Path, key: str) -> bool:
    """True when ``OUT/key`` holds a whole output (its result record was renamed into place)."""
    return (out / key / RESULT_FILE).is_file()


def predict_series(
    model: RunModel,
    index: int,
    source: Path,
    model_sha256: str,
    out: Path,
    key: str | None = None,
) -> SeriesOutcome:
    """Predict one input into ``OUT/<key>/`` unless it is already there.

    Args:
        model: The run's model (loaded on the first input that needs it).
        index: The input's position in the batch (what the summary names it by).
        source: The input (a DICOM series folder, an image file, a record file).
        model_sha256: `medsight.batch.series_keys.model_digest` of the run.
        out: The batch's output folder.
        key: The output name when a previous stage computed it (Ray's key stage).

    Returns:
        ``done`` (written now), ``skipped`` (written before) or ``failed`` with a reason.
        Never raises for a bad input: one input's failure does not stop the others.

    Raises:
        InputError: the run's model cannot be loaded (every input would fail alike).
    """
    started = time.perf_counter()
    source = Path(source)
    try:
        key = key or series_key(source, model_sha256)
    except InputError as exc:
        return SeriesOutcome(index, "failed", None, failure_reason(exc, source))
    if is_done(out, key):
        return SeriesOutcome(index, "skipped", key)
    loaded = model.get()  # a model that cannot load is the run's fault: it stops the batch
    try:
        with atomic_dir(out / key) as tmp:
            record = loaded.predict(source, tmp, False)
            record.input = str(source)
            data = record.to_json()
            (tmp / RESULT_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the batch)
        if is_done(out, key):  # the same content listed twice, finished by another worker
            return SeriesOutcome(index, "skipped", key)
        return SeriesOutcome(index, "failed", key, failure_reason(exc, source))
    return SeriesOutcome(index, "done", key, seconds=round(time.perf_counter() - started, 4))
