"""K-fold cross-validation of a risk model on the development (train + tuning) subjects.

Folds are subject-grouped (every prediction time of a subject in one fold), assigned by a
seeded permutation of the subjects. Each fold's held-out subjects stop its training early
and give out-of-fold scores; held-out patients stay untouched. The engine's driver
(`medsight.train.cross_validation`) names the fold folders ``fold_1`` ... ``fold_K``, lists
them in ``ensemble.json`` and writes ``cv_metrics.json`` (per-fold and pooled out-of-fold
AUROC). Each fold folder holds ``model.safetensors``, ``model.json`` and ``plan.json``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsight.ehr.data.plan import PLAN_FILE
from medsight.ehr.tasks.risk_config import RiskTrainConfig
from medsight.ehr.tasks.risk_contract import RiskContract, library_versions, write_contract
from medsight.ehr.tasks.risk_data import RiskData
from medsight.ehr.tasks.risk_fit import fit_risk_model, predict_scores, risk_auc
from medsight.errors import InputError
from medsight.runs.contract import WEIGHTS
from medsight.runs.weights import save_weights, transfer_preparation
from medsight.train.cross_validation import Fold, cross_validate


def subject_folds(subjects: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold (0 ... k-1) of each sample, every subject's samples in one fold.

    Raises:
        InputError: fewer subjects than folds.
    """
    unique = np.unique(subjects)
    if len(unique) < k:
        raise InputError(f"--folds {k}: only {len(unique)} development subjects")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = np.empty(len(unique), np.int64)
    fold_of[order] = np.arange(len(unique)) % k
    return fold_of[np.searchsorted(unique, subjects)]


def run_risk_folds(
    prepared: RiskData,
    config: RiskTrainConfig,
    run_dir: Path,
    k: int,
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train ``k`` fold models of ``config.model_name``; per-fold and pooled AUROC.

    Raises:
        InputError: fewer subjects than folds, or a fold without both outcomes.
    """
    samples = prepared.samples
    development = np.sort(np.concatenate([prepared.indices("train"), prepared.indices("tuning")]))
    subjects = np.asarray(samples.subject_id)[development]
    folds = subject_folds(subjects, k, config.seed)
    labels = np.asarray(samples.label)
    for fold in range(k):
        if len(np.unique(labels[development[folds == fold]])) < 2:
            raise InputError(f"--folds {k}: fold {fold + 1} lacks one outcome (fewer folds?)")

    def fit_fold(fold: Fold) -> list[float]:
        def epoch_done(row: dict[str, float]) -> None:
            if on_fold:
                on_fold(fold.number - 1, row)

        fit = fit_risk_model(
            samples,
            fold.kept,
            fold.held,
            prepared.plan.model,
            config,
            on_epoch=epoch_done,
            state_dir=fold.run_dir / "checkpoints",
            prepare_model=transfer_preparation(config.init_weights),
        )
        save_weights(fit.model, fold.run_dir / WEIGHTS)
        shutil.copyfile(run_dir / PLAN_FILE, fold.run_dir / PLAN_FILE)
        held_scores = predict_scores(fit.model, samples, fold.held)
        write_contract(
            fold.run_dir,
            RiskContract(
                model_name=config.model_name,
                models=[config.model_name],
                label_definition=prepared.label_definition(),
                data=str(prepared.data),
                labels=str(prepared.labels_path),
                tuning_auroc={config.model_name: risk_auc(labels[fold.held], held_scores)},
                seed=config.seed,
                fold=fold.number,
                versions=library_versions(),
            ),
        )
        return [float(s) for s in held_scores]

    def score(indices: np.ndarray, outcomes: Sequence[float]) -> dict[str, Any]:
        return {"auroc": risk_auc(labels[indices], np.asarray(outcomes))}

    ids = [
        f"{s}@{np.datetime_as_string(t, unit='s')}"
        for s, t in zip(subjects, np.asarray(samples.prediction_time)[development], strict=True)
    ]
    return cross_validate(
        run_dir,
        development,
        folds,
        k,
        ids,
        fit_fold,
        score_fold=score,
        score_pooled=lambda indices, outcomes: {"pooled_out_of_fold": score(indices, outcomes)},
    )
