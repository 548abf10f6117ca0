"""The `Task` protocol and the registry of task plug-ins (name -> instance), as timm's models.

A task (``image-classify``, ``image-segment``, later EHR and text ones) owns everything that
differs between tasks: reading and checking its data, its plan and training config, fitting
through the one loop (`medsight.train.loop`), evaluating and reporting, and predicting one
input to a result record (`medsight.tasks.results`). The CLI verbs and the service's job
worker find the task here, by name (``--task``) or from a run folder's contract, and never
compare task names themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from medsight.errors import InputError
from medsight.runs.contract import read_run_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions
from medsight.tasks.results import ResultRecord


class LoadedRun(Protocol):
    """A run's model loaded for the service: predicts one stored input into a folder."""

    def is_2d(self) -> bool:
        """True when the model takes single 2D images (answered at once, not queued)."""
        ...

    def predict(self, source: Path, out: Path, heatmap: bool) -> ResultRecord:
        """Predict ``source``, writing files into ``out`` (names in the record are relative)."""
        ...


class Task(Protocol):
    """What every task implements."""

    #: registry name, e.g. ``image-classify``
    name: str
    #: the ``task`` a run folder's contract records (kept stable for existing runs)
    run_name: str
    #: other spellings ``--task`` accepts
    aliases: tuple[str, ...]

    def plan(self, data: Path, out: Path, sample: int, seed: int) -> list[str]:
        """Fingerprint ``data`` and write its plan to ``out``; return the plan's notes."""
        ...

    def train(self, data: Path, run_dir: Path, options: TrainOptions) -> None:
        """Check and prepare ``data``, plan, fit through the one loop, write the run folder."""
        ...

    def evaluate(self, run_dir: Path, options: EvaluateOptions) -> None:
        """Score the run on its test split (or ``options.data``) and write the report."""
        ...

    def predict(self, run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
        """Predict each input with the run's model and print or write the result records."""
        ...

    def explain(self, run_dir: Path, source: Path, options: ExplainOptions) -> None:
        """Write why the model predicted what it did for ``source`` (heatmaps, overlays)."""
        ...

    def export(self, run_dir: Path) -> Path:
        """Write an ONNX copy of the run's model; return its path."""
        ...

    def load(self, folder: Path) -> LoadedRun:
        """The run's model, loaded once for the service."""
        ...


_TASKS: dict[str, Task] = {}
T = TypeVar("T")


def register_task(factory: Callable[[], T]) -> Callable[[], T]:
    """Class decorator: register one instance of the task under its name and aliases."""
    task = factory()
    # dict.fromkeys: a task whose run name is its registry name (ehr-risk) lists it once
    for key in dict.fromkeys((task.name, task.run_name, *task.aliases)):  # type: ignore[attr-defined]
        if key in _TASKS:
            raise ValueError(f"task name {key!r} registered twice")
        _TASKS[key] = task  # type: ignore[assignment]
    return factory


def list_tasks() -> list[str]:
    """Registry names of every registered task."""
    return sorted({t.name for t in _TASKS.values()})


def get_task(name: str) -> Task:
    """The task registered as ``name`` (or one of its aliases).

    Raises:
        InputError: no task has that name.
    """
    if name not in _TASKS:
        spellings = ", ".join(sorted(_TASKS))
        raise InputError(f"unknown task {name!r}; available: {spellings or 'none registered'}")
    return _TASKS[name]


def task_of_run(run_dir: Path) -> Task:
    """The task that made ``run_dir`` (from its ``model.json``, or its first fold's).

    Raises:
        InputError: the run has no readable contract, or its task is not registered.
    """
    return get_task(read_run_task(Path(run_dir)))
