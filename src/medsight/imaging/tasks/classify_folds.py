"""K-fold cross-validation on the development (train + val) cases, patient-grouped.

Each fold's held-out patients are its validation set (early stopping) and give out-of-fold
predictions; the test split stays untouched. The K models are saved as ``fold_1`` ...
``fold_K`` and listed in ``ensemble.json``, which `Predictor` averages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medsight.evaluate.classification.classification_metrics import classification_metrics
from medsight.imaging.data.patient_split import patient_folds
from medsight.imaging.inference.predictor import predict_probabilities
from medsight.imaging.models.checkpoint import save_checkpoint
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData
from medsight.imaging.tasks.classify_fit import fit_classifier
from medsight.imaging.tasks.classify_run import model_contract
from medsight.runs.atomic import write_text_atomic
from medsight.runs.ensemble import ENSEMBLE_FILE


def run_cross_validation(
    data: ClassificationData,
    config: TrainConfig,
    run_dir: Path,
    k: int,
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train ``k`` fold models and return per-fold and pooled out-of-fold metrics.

    Raises:
        InputError: fewer patients (or patients of a class) than folds.
    """
    development = np.concatenate([data.indices("train"), data.indices("val")])
    development.sort()
    folds = np.array(patient_folds([data.cases[i] for i in development], k, config.seed))
    oof = np.zeros((len(development), len(data.class_names)), dtype=np.float32)
    per_fold = []
    members = []
    for fold in range(k):
        held = development[folds == fold]
        kept = development[folds != fold]
        fold_dir = run_dir / f"fold_{fold + 1}"

        def epoch_done(row: dict[str, float], fold: int = fold) -> None:
            if on_fold:
                on_fold(fold, row)

        fit = fit_classifier(
            data.volumes.subset(kept),
            data.labels[kept],
            data.volumes.subset(held),
            data.labels[held],
            len(data.class_names),
            config,
            on_epoch=epoch_done,
            state_dir=fold_dir / "checkpoints",
        )
        contract = model_contract(data, config, {"fold": fold + 1, "best_epoch": fit.best_epoch})
        save_checkpoint(fold_dir, fit.model, contract)
        members.append(fold_dir.name)
        probs = predict_probabilities(fit.model, data.volumes.subset(held))
        oof[folds == fold] = probs
        metrics = classification_metrics(data.labels[held], probs, data.class_names)
        per_fold.append({"fold": fold + 1, "cases": int(len(held)), **metrics})
    result = {
        "folds": per_fold,
        "pooled_out_of_fold": classification_metrics(
            data.labels[development], oof, data.class_names
        ),
        "fold_of_case": {
            data.cases[i].case_id: int(f) + 1 for i, f in zip(development, folds, strict=True)
        },
    }
    write_text_atomic(run_dir / "cv_metrics.json", json.dumps(result, indent=2))
    write_text_atomic(run_dir / ENSEMBLE_FILE, json.dumps({"members": members}, indent=2))
    return result
