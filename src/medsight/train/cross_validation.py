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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from medsight.runs.atomic import write_text_atomic
from medsight.runs.ensemble import ENSEMBLE_FILE

#: what a fold's model gives for one held-out case
Outcome = TypeVar("Outcome")

CV_METRICS_FILE = "cv_metrics.json"


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
            outcome per case of ``fold.held``, in that order.
        score_fold: ``(held indices, their outcomes)`` -> the fold's entries of
            ``cv_metrics.json`` (beside ``fold`` and ``cases``).
        score_pooled: ``(development, every out-of-fold outcome in development order)`` ->
            the pooled entries of ``cv_metrics.json``.

    Returns:
        The content of ``cv_metrics.json``.
    """
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
        outcomes = fit_fold(current)
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
    write_text_atomic(run_dir / CV_METRICS_FILE, json.dumps(result, indent=2))
    write_text_atomic(run_dir / ENSEMBLE_FILE, json.dumps({"members": members}, indent=2))
    return result
