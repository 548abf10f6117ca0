"""Folds as independent processes: ``--fold k`` trains one fold, ``--folds K`` gathers the
finished ones (same settings, same held-out cases) instead of retraining them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.runs.ensemble import ensemble_members
from medsight.train.cross_validation import (
    Fold,
    FoldFinished,
    FoldSchedule,
    cross_validate,
    scheduled_folds,
)

DEVELOPMENT = np.array([0, 2, 3, 5, 7, 8])
FOLDS = np.array([1, 0, 2, 1, 0, 2])
IDS = [f"case{i}" for i in DEVELOPMENT]


def _run(run_dir: Path, trained: list[int]) -> dict[str, Any]:
    def fit_fold(fold: Fold) -> list[np.ndarray]:
        trained.append(fold.number)
        fold.run_dir.mkdir(parents=True, exist_ok=True)
        # class probabilities, float32 as the imaging task gives them
        return [np.array([i / 10, 1 - i / 10], np.float32) for i in fold.held]

    def score(indices: np.ndarray, outcomes: Sequence[np.ndarray]) -> dict[str, Any]:
        probs = np.stack(outcomes)
        assert probs.dtype == np.float32
        return {"held": indices.tolist(), "mean": float(probs[:, 0].mean())}

    return cross_validate(
        run_dir,
        DEVELOPMENT,
        FOLDS,
        3,
        IDS,
        fit_fold,
        score,
        lambda indices, outcomes: {"pooled": score(indices, outcomes)},
    )


def test_one_fold_per_process_then_gathered_without_retraining(tmp_path: Path) -> None:
    run, trained = tmp_path / "run", []
    settings = FoldSchedule(settings='{"epochs": 2}')
    for number in (3, 1, 2):  # any order, as a scheduler starts them
        only = FoldSchedule(only=number, settings=settings.settings)
        with scheduled_folds(only), pytest.raises(FoldFinished) as finished:
            _run(run, trained)
        assert (finished.value.number, finished.value.folder) == (number, f"fold_{number}")
        assert not (run / "cv_metrics.json").exists()
    assert trained == [3, 1, 2]
    saved = json.loads((run / "fold_1" / "fold_outcomes.json").read_text())
    assert saved["held_case_ids"] == ["case2", "case7"]

    with scheduled_folds(settings):
        gathered = _run(run, trained)
    assert trained == [3, 1, 2]  # nothing retrained
    reference = _run(tmp_path / "one_process", [])
    assert gathered == reference
    assert json.loads((run / "cv_metrics.json").read_text()) == reference
    assert ensemble_members(run) == [run / f"fold_{n}" for n in (1, 2, 3)]


def test_folds_of_other_settings_or_without_a_schedule_are_retrained(tmp_path: Path) -> None:
    run, trained = tmp_path / "run", []
    with scheduled_folds(FoldSchedule(only=2, settings="a")), pytest.raises(FoldFinished):
        _run(run, trained)
    with scheduled_folds(FoldSchedule(settings="b")):
        _run(run, trained)
    assert trained == [2, 1, 2, 3]
    _run(run, trained)  # no schedule: every fold trains, as before fold scheduling existed
    assert trained == [2, 1, 2, 3, 1, 2, 3]


def test_a_fold_beyond_k_is_refused(tmp_path: Path) -> None:
    with scheduled_folds(FoldSchedule(only=4)), pytest.raises(InputError, match="--fold 4"):
        _run(tmp_path, [])
