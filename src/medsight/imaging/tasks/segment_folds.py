"""K-fold cross-validation of a segmentation network on the development (train + val) cases.

Folds are patient-grouped. Each fold trains on the other folds' cases and selects its best
epoch on its own held-out patients, whose whole-volume predictions are the out-of-fold
(OOF) predictions; the test split stays untouched. The engine's driver
(`medsight.train.cross_validation`) saves the K models as ``fold_1`` ... ``fold_K`` and
lists them in ``ensemble.json``; `Segmenter` averages their probabilities.
``cv_metrics.json`` holds per-fold and pooled OOF Dice per structure (voxels pooled over
cases, nnU-Net's validation Dice). Post-processing for the ensemble is chosen on the OOF
predictions, as nnU-Net does after cross-validation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medsight.evaluate.segmentation.segmentation_metrics import global_dice, overlap_counts
from medsight.imaging.data.patient_split import patient_folds
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.models.checkpoint import save_checkpoint
from medsight.imaging.preprocess.contract import background_value
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.imaging.tasks.segment_data import SegmentationData, as_cases
from medsight.imaging.tasks.segment_fit import fit_segmenter
from medsight.imaging.tasks.segment_run import segmentation_contract
from medsight.train.cross_validation import Fold, cross_validate

#: one case's ``(tp, fp, fn)`` voxel counts, per structure
CaseCounts = list[tuple[int, int, int]]


def run_segmentation_cross_validation(
    data: SegmentationData,
    config: SegmentTrainConfig,
    run_dir: Path,
    k: int,
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    """Train ``k`` fold models.

    Returns:
        The CV metrics (also in ``cv_metrics.json``), and the OOF predictions and references
        (label indices on the preprocessed grid, fold by fold), for choosing post-processing.

    Raises:
        InputError: fewer patients than folds.
    """
    development = np.sort(np.concatenate([data.indices("train"), data.indices("val")]))
    folds = np.array(patient_folds(as_cases([data.cases[i] for i in development]), k, config.seed))
    n_classes = len(data.class_names)
    structures = list(enumerate(data.class_names[1:], start=1))
    background = background_value(data.plan.preprocess)
    predictions: list[np.ndarray] = []
    references: list[np.ndarray] = []

    def fit_fold(fold: Fold) -> list[CaseCounts]:
        def epoch_done(row: dict[str, float]) -> None:
            if on_fold:
                on_fold(fold.number - 1, row)

        fit = fit_segmenter(
            data.images.subset(fold.kept),
            data.labels.subset(fold.kept),
            data.images.subset(fold.held),
            data.labels.subset(fold.held),
            n_classes,
            config,
            background,
            on_epoch=epoch_done,
            state_dir=fold.run_dir / "checkpoints",
        )
        extra = {"fold": fold.number, "best_epoch": fit.best_epoch, "epochs_run": len(fit.history)}
        save_checkpoint(fold.run_dir, fit.model, segmentation_contract(data, config, extra))
        counts = []
        for i in fold.held:
            probs = sliding_window_probabilities(
                fit.model,
                data.images[int(i)],
                config.patch_size,
                n_classes,
                overlap=config.overlap,
                background=background,
            )
            pred, truth = probs.argmax(0).numpy().astype(np.uint8), data.labels[int(i)]
            predictions.append(pred)
            references.append(truth)
            counts.append([overlap_counts(pred, truth, c) for c, _ in structures])
        return counts

    def dice(cases: Sequence[CaseCounts]) -> dict[str, float]:
        return {name: global_dice(case[c - 1] for case in cases) for c, name in structures}

    result = cross_validate(
        run_dir,
        development,
        folds,
        k,
        [data.cases[i].case_id for i in development],
        fit_fold,
        score_fold=lambda _, cases: {"dice": dice(cases)},
        score_pooled=lambda _, cases: {"pooled_out_of_fold_dice": dice(cases)},
    )
    return result, predictions, references
