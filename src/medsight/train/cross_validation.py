"""K-fold cross-validation: the one driver every task's ``--folds`` runs (`cross_validate`).

The task splits its development cases (train + val; the test split stays untouched) into
folds, grouped by patient, and supplies three callables: train one fold's model and return
an outcome for each of its held-out cases (class probabilities, overlap counts, ...), and
score a set of outcomes. The driver runs the folds, gives each its run folder ``fold_1`` ...
``fold_K``, lists them in ``ensemble.json`` (`medsight.runs.ensemble`, whose members the
task's inference averages), and writes ``cv_metrics.json``:

- ``folds``: per fold ``{"fold", "cases", **score_fold(...)}``;
- the pooled out-of-fold score, ``score_pooled`` over every development case;
- ``fold_of_case``: ``{case_id: fold}`` (folds numbered from 1).

Folds as independent processes (``medsight train ... --folds K --fold k``): the CLI sets a
`FoldSchedule` around the task's train call (`scheduled_folds`) rather than through every
task's options, since which folds a process runs is a matter of scheduling, not of the
task, and every task's ``--folds`` reaches this one driver. With ``only`` = k the driver
trains fold k alone, writes its held-out outcomes to ``fold_k/fold_outcomes.json`` and ends
the task with `FoldFinished` (the task's own summary of all K folds does not apply). Without
``only``, a fold whose ``fold_outcomes.json`` holds the same settings and the same held-out
cases is gathered from it instead of retrained; then the pooled files are written as
usual. So a scheduler can run K jobs side by side (even on other machines sharing RUN) and
a last ``--folds K`` job ensembles them. Outcomes are stored as JSON (arrays with their
dtype), never pickled.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.runs.ensemble import ENSEMBLE_FILE
from medsight.train.distributed import torchrun_launch

#: what a fold's model gives for one held-out case
Outcome = TypeVar("Outcome")

CV_METRICS_FILE = "cv_metrics.json"
#: a finished fold's held-out cases and outcomes (in ``fold_N/``)
FOLD_OUTCOMES_FILE = "fold_outcomes.json"


@dataclass(frozen=True)
class FoldSchedule:
    """Which folds this process trains, and which finished ones it may gather."""

    #: train only this fold (1 ... K); None: every fold not already finished
    only: int | None = None
    #: what a finished fold's settings must equal to be gathered ("" : never gather, the
    #: default, so a caller that sets no schedule retrains every fold as before)
    settings: str = ""


class FoldFinished(Exception):  # noqa: N818 - not an error: the one fold asked for is done
    """The one fold a `FoldSchedule` asked for is trained and saved."""

    def __init__(self, number: int, folder: str) -> None:
        super().__init__(f"fold {number} finished")
        self.number = number
        #: the fold's folder name in RUN, ``fold_N``
        self.folder = folder


_SCHEDULE: ContextVar[FoldSchedule | None] = ContextVar("fold_schedule", default=None)


@contextlib.contextmanager
def scheduled_folds(schedule: FoldSchedule) -> Iterator[None]:
    """Run the `cross_validate` calls inside this block on ``schedule``."""
    token = _SCHEDULE.set(schedule)
    try:
        yield
    finally:
        _SCHEDULE.reset(token)


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"array", "dtype"}:
        return np.asarray(value["array"], dtype=value["dtype"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _held_ids(fold: Fold, case_ids: Sequence[str], development: np.ndarray) -> list[str]:
    position = {int(index): p for p, index in enumerate(development)}
    return [case_ids[position[int(i)]] for i in fold.held]


def _write_outcomes(
    fold: Fold, held_ids: list[str], settings: str, outcomes: Sequence[Any]
) -> None:
    record = {
        "fold": fold.number,
        "settings": settings,
        "held_case_ids": held_ids,
        "outcomes": _encode(list(outcomes)),
    }
    write_text_atomic(fold.run_dir / FOLD_OUTCOMES_FILE, json.dumps(record))


def _finished_outcomes(fold: Fold, held_ids: list[str], settings: str) -> list[Any] | None:
    """The saved outcomes of ``fold`` if it finished with ``settings`` on these cases."""
    path = fold.run_dir / FOLD_OUTCOMES_FILE
    if not settings or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc}); delete it to retrain the fold") from None
    if record.get("settings") != settings or record.get("held_case_ids") != held_ids:
        return None  # another command's fold: retrained, as every fold was before
    outcomes = _decode(record.get("outcomes"))
    if not isinstance(outcomes, list) or len(outcomes) != len(held_ids):
        raise InputError(f"{path}: outcomes do not match its cases; delete it to retrain the fold")
    return outcomes


@dataclass(frozen=True)
class Fold:
    """One fold: which cases train its model and which are held out to score it."""

    #: 1 ... K
    number: int
    #: dataset indices of the training cases (the other folds' cases)
    kept: np.ndarray
    #: dataset indices of the held-out cases, in development order
    held: np.ndarray
    #: the fold model's run folder, ``RUN/fold_N``
    run_dir: Path


def cross_validate(
    run_dir: Path,
    development: np.ndarray,
    folds: np.ndarray,
    n_folds: int,
    case_ids: Sequence[str],
    fit_fold: Callable[[Fold], Sequence[Outcome]],
    score_fold: Callable[[np.ndarray, Sequence[Outcome]], dict[str, Any]],
    score_pooled: Callable[[np.ndarray, Sequence[Outcome]], dict[str, Any]],
) -> dict[str, Any]:
    """Train a model per fold, score its held-out cases, and write the run's CV files.

    Args:
        run_dir: the run folder (gets ``fold_N/``, ``ensemble.json``, ``cv_metrics.json``).
        development: dataset indices of the development cases.
        folds: fold of each development case, ``0 ... n_folds-1``.
        n_folds: K.
        case_ids: ID of each development case.
        fit_fold: trains the fold's model, saves it in ``fold.run_dir`` and returns one
            outcome per case of ``fold.held``, in that order (numbers, lists, dicts or
            numpy arrays of them: they are saved as JSON).
        score_fold: ``(held indices, their outcomes)`` -> the fold's entries of
            ``cv_metrics.json`` (beside ``fold`` and ``cases``).
        score_pooled: ``(development, every out-of-fold outcome in development order)`` ->
            the pooled entries of ``cv_metrics.json``.

    Returns:
        The content of ``cv_metrics.json``.

    Raises:
        FoldFinished: the `FoldSchedule` asked for one fold, and it is saved.
        InputError: ``--fold`` beyond K, or a finished fold's outcomes are unreadable.
    """
    schedule = _SCHEDULE.get() or FoldSchedule()
    if schedule.only is not None and not 1 <= schedule.only <= n_folds:
        raise InputError(f"--fold {schedule.only}: folds are numbered 1 to {n_folds}")
    folds = np.asarray(folds)
    out_of_fold: list[Any] = [None] * len(development)
    per_fold = []
    members = []
    for fold in range(n_folds):
        current = Fold(
            fold + 1,
            development[folds != fold],
            development[folds == fold],
            run_dir / f"fold_{fold + 1}",
        )
        if schedule.only is not None and schedule.only != current.number:
            continue
        held_ids = _held_ids(current, case_ids, development)
        saved = None if schedule.only else _finished_outcomes(current, held_ids, schedule.settings)
        outcomes = fit_fold(current) if saved is None else saved
        if saved is None and _is_writer():
            _write_outcomes(current, held_ids, schedule.settings, outcomes)
        if schedule.only is not None:
            raise FoldFinished(current.number, current.run_dir.name)
        members.append(current.run_dir.name)
        for position, outcome in zip(np.flatnonzero(folds == fold), outcomes, strict=True):
            out_of_fold[position] = outcome
        per_fold.append(
            {
                "fold": current.number,
                "cases": int(len(current.held)),
                **score_fold(current.held, outcomes),
            }
        )
    result = {
        "folds": per_fold,
        **score_pooled(development, out_of_fold),
        "fold_of_case": {case_id: int(f) + 1 for case_id, f in zip(case_ids, folds, strict=True)},
    }
    if _is_writer():
        write_text_atomic(run_dir / CV_METRICS_FILE, json.dumps(result, indent=2))
        write_text_atomic(run_dir / ENSEMBLE_FILE, json.dumps({"members": members}, indent=2))
    return result


def _is_writer() -> bool:
    launch = torchrun_launch()
    return launch is None or launch.rank == 0
