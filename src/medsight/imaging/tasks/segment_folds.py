"""K-fold cross-validation of a segmentation network on the development (train + val) cases.

Folds are patient-grouped. Each fold trains on the other folds' cases and selects its best
epoch on its own held-out patients, whose whole-volume predictions are the out-of-fold
(OOF) predictions; the test split stays untouched. The K models are saved as ``fold_1`` ...
``fold_K`` and listed in ``ensemble.json``; `Segmenter` averages their probabilities.
``cv_metrics.json`` holds per-fold and pooled OOF Dice per structure (voxels pooled over
cases, nnU-Net's validation Dice). Post-processing for the ensemble is chosen on the OOF
predictions, as nnU-Net does after cross-validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medsight.imaging.data.patient_split import patient_folds
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.models.checkpoint import save_checkpoint
from medsight.imaging.preprocess.contract import background_value
from medsight.imaging.tasks.segment_config import SegmentTrainConfig
from medsight.imaging.tasks.segment_data import SegmentationData, as_cases
from medsight.imaging.tasks.segment_fit import fit_segmenter, global_dice, overlap_counts
from medsight.imaging.tasks.segment_run import segmentation_contract
from medsight.runs.atomic import write_text_atomic
from medsight.runs.ensemble import ENSEMBLE_FILE


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
        (label indices on the preprocessed grid), for choosing post-processing.

    Raises:
        InputError: fewer patients than folds.
    """
    development = np.sort(np.concatenate([data.indices("train"), data.indices("val")]))
    folds = np.array(patient_folds(as_cases([data.cases[i] for i in development]), k, config.seed))
    n_classes = len(data.class_names)
    background = background_value(data.plan.preprocess)
    per_fold, members = [], []
    predictions: list[np.ndarray] = []
    references: list[np.ndarray] = []
    pooled: list[list[tuple[int, int, int]]] = [[] for _ in range(1, n_classes)]
    for fold in range(k):
        held, kept = development[folds == fold], development[folds != fold]
        fold_dir = run_dir / f"fold_{fold + 1}"

        def epoch_done(row: dict[str, float], fold: int = fold) -> None:
            if on_fold:
                on_fold(fold, row)

        fit = fit_segmenter(
            data.images.subset(kept),
            data.labels.subset(kept),
            data.images.subset(held),
            data.labels.subset(held),
            n_classes,
            config,
            background,
            on_epoch=epoch_done,
            state_dir=fold_dir / "checkpoints",
        )
        extra = {"fold": fold + 1, "best_epoch": fit.best_epoch, "epochs_run": len(fit.history)}
        save_checkpoint(fold_dir, fit.model, segmentation_contract(data, config, extra))
        members.append(fold_dir.name)
        counts: list[list[tuple[int, int, int]]] = [[] for _ in range(1, n_classes)]
        for i in held:
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
            for c in range(1, n_classes):
                counts[c - 1].append(overlap_counts(pred, truth, c))
                pooled[c - 1].append(counts[c - 1][-1])
        per_fold.append(
            {
                "fold": fold + 1,
                "cases": int(len(held)),
                "dice": {
                    name: global_dice(counts[c - 1])
                    for c, name in enumerate(data.class_names[1:], start=1)
                },
            }
        )
    result = {
        "folds": per_fold,
        "pooled_out_of_fold_dice": {
            name: global_dice(pooled[c - 1]) for c, name in enumerate(data.class_names[1:], start=1)
        },
        "fold_of_case": {
            data.cases[i].case_id: int(f) + 1 for i, f in zip(development, folds, strict=True)
        },
    }
    write_text_atomic(run_dir / "cv_metrics.json", json.dumps(result, indent=2))
    write_text_atomic(run_dir / ENSEMBLE_FILE, json.dumps({"members": members}, indent=2))
    return result, predictions, references
