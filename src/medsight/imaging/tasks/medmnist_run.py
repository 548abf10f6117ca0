"""The MedMNIST v2 protocol, so results compare with the MedMNIST v2 paper's table.

Yang et al. (2023), MedMNIST v2: ResNet-18 adapted to small images (3x3 stride-1 stem, no
max-pool: ``resnet18-small``), cross-entropy, Adam at 1e-3, batch 128, 100 epochs, learning
rate x0.1 at 50% and 75% of the epochs, no augmentation; the reported model is the epoch with
the best validation AUC; ACC and (one-vs-rest, class-averaged) AUC on the test split.

Images are scaled from uint8 to [0, 1]; colour images become ``(N, 3, H, W)``. Multi-label
sets (ChestMNIST) are not supported by this preset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medsight.errors import InputError
from medsight.evaluate.bootstrap import metrics_with_ci
from medsight.evaluate.classification.classification_metrics import classification_metrics
from medsight.imaging.inference.predictor import predict_probabilities
from medsight.imaging.io.medmnist import MedMNISTSplit, read_medmnist
from medsight.imaging.models.checkpoint import ModelContract, library_versions, save_checkpoint
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_fit import fit_classifier
from medsight.runs.atomic import write_text_atomic
from medsight.train.run_folder import fit_in_run_folder

PRESET: dict[str, Any] = {
    "model_name": "resnet18-small",
    "learning_rate": 1e-3,
    "batch_size": 128,
    "schedule": "steps",
    "augment": False,
    "imbalance": "none",
    "weight_decay": 0.0,
    "max_epochs": 100,
}


def _images(split: MedMNISTSplit) -> np.ndarray:
    images = split.images.astype(np.float32) / 255.0
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)) if split.is_colour else images


def _labels(split: MedMNISTSplit, source: Path, name: str) -> np.ndarray:
    labels = np.asarray(split.labels)
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise InputError(
            f"{source}: {name}_labels has {labels.shape[1]} columns (multi-label); "
            "the MedMNIST preset handles multi-class sets only"
        )
    return labels.reshape(-1).astype(np.int64)


def train_medmnist(
    npz: Path,
    run_dir: Path,
    epochs: int = 100,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train and test on a MedMNIST archive with the v2 protocol; write RUN and metrics.json.

    Raises:
        InputError: unreadable archive, missing splits, or a multi-label set.
    """
    splits = read_medmnist(npz)
    missing = [s for s in ("train", "val", "test") if s not in splits]
    if missing:
        raise InputError(f"{npz}: missing split(s) {', '.join(missing)}")
    x = {s: _images(splits[s]) for s in ("train", "val", "test")}
    y = {s: _labels(splits[s], npz, s) for s in ("train", "val", "test")}
    k = int(max(int(v.max()) for v in y.values())) + 1
    names = [str(i) for i in range(k)]
    spatial: Literal[2, 3] = 3 if splits["train"].is_3d else 2
    config = TrainConfig(
        **{**PRESET, "max_epochs": epochs},
        spatial_dims=spatial,
        in_channels=3 if splits["train"].is_colour else 1,
        seed=seed,
        patience=epochs,  # the protocol trains every epoch and keeps the best validation AUC
        max_minutes=24 * 60,
    )
    fit = fit_in_run_folder(
        run_dir,
        config,
        partial(fit_classifier, x["train"], y["train"], x["val"], y["val"], k, config),
        on_epoch=on_epoch,
    )
    contract = ModelContract(
        model_name=config.model_name,
        class_names=names,
        in_channels=config.in_channels,
        spatial_dims=spatial,
        preprocess=PreprocessContract(
            spacing_mm=(1.0, 1.0, 1.0),
            window_hu=(0.0, 255.0),
            shape=None,
            crop_to="body",
            mask_outside_lungs=False,
            modality="OT",
        ),
        seed=seed,
        versions=library_versions(),
        extra={"protocol": "MedMNIST v2", "source": npz.name, "best_epoch": fit.best_epoch},
    )
    save_checkpoint(run_dir, fit.model, contract)
    probs = predict_probabilities(fit.model, x["test"], spatial_dims=spatial, flip_tta=False)
    ids = [str(i) for i in range(len(y["test"]))]
    metrics = {
        "protocol": "MedMNIST v2 (ResNet-18 small-image, Adam 1e-3, batch 128, x0.1 at 50%/75%)",
        **classification_metrics(y["test"], probs, names),
        "with_ci": metrics_with_ci(y["test"], probs, ids, names),
        "best_epoch": fit.best_epoch,
    }
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
