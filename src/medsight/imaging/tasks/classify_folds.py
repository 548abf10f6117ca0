"""K-fold cross-validation of a classifier on the development (train + val) cases.

Folds are patient-grouped. Each fold's held-out patients are its validation set (early
stopping) and give out-of-fold predictions; the test split stays untouched. The engine's
driver (`medsight.train.cross_validation`) saves the K models as ``fold_1`` ... ``fold_K``
and lists them in ``ensemble.json``, which `Predictor` averages; ``cv_metrics.json`` holds
per-fold and pooled out-of-fold `classification_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from medsight.train.cross_validation import Fold, cross_validate


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

    def fit_fold(fold: Fold) -> list[np.ndarray]:
        def epoch_done(row: dict[str, float]) -> None:
            if on_fold:
                on_fold(fold.number - 1, row)

        fit = fit_classifier(
            data.volumes.subset(fold.kept),
            data.labels[fold.kept],
            data.volumes.subset(fold.held),
            data.labels[fold.held],
            len(data.class_names),
            config,
            on_epoch=epoch_done,
            state_dir=fold.run_dir / "checkpoints",
        )
        extra = {"fold": fold.number, "best_epoch": fit.best_epoch}
        save_checkpoint(fold.run_dir, fit.model, model_contract(data, config, extra))
        return list(predict_probabilities(fit.model, data.volumes.subset(fold.held)))

    def metrics(indices: np.ndarray, probs: Sequence[np.ndarray]) -> dict[str, Any]:
        return classification_metrics(data.labels[indices], np.stack(probs), data.class_names)

    return cross_validate(
        run_dir,
        development,
        folds,
        k,
        [data.cases[i].case_id for i in development],
        fit_fold,
        score_fold=metrics,
        score_pooled=lambda indices, probs: {"pooled_out_of_fold": metrics(indices, probs)},
    )
