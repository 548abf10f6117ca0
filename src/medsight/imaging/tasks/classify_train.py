"""Training a classification run: patient split, plan, cache, fit (one run, K folds or a preset).

What `medsight train --task classify` and `medsight demo` run; progress bars per stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from medsight.console import progress_bar, say, stage_ticker
from medsight.errors import InputError
from medsight.imaging.preprocess.fingerprint import DatasetFingerprint
from medsight.imaging.preprocess.plan import Plan
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData, prepare_classification_data
from medsight.imaging.tasks.classify_folds import run_cross_validation
from medsight.imaging.tasks.classify_run import train_classification_run
from medsight.imaging.tasks.classify_setup import config_from_plan
from medsight.imaging.tasks.medmnist_run import train_medmnist
from medsight.imaging.tasks.transfer_setup import transfer_preparation
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import TrainOptions
from medsight.train.loop import FitResult

#: the manifest, classes and seed a run was trained with (read by `medsight evaluate`)
DATASET_FILE = "dataset.json"


def prepare_with_progress(
    data: Path,
    run_dir: Path,
    seed: int,
    classes: list[str] | None,
    replan: bool,
    choose: Callable[[DatasetFingerprint, dict[str, int]], Plan] | None = None,
) -> ClassificationData:
    """`prepare_classification_data` with a progress bar per stage (``choose``: its
    ``choose_plan``)."""
    with progress_bar() as progress:
        stage = stage_ticker(progress)
        prepared = prepare_classification_data(
            data, run_dir, seed, classes, replan, stage, choose_plan=choose
        )
    n, hits = len(prepared.cases), prepared.cache_hits
    say(f"{n} cases ({hits} from cache); plan: {run_dir / 'plan.json'}")
    return prepared


def fit_with_progress(
    prepared: ClassificationData,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    prepare_model: Callable[[torch.nn.Module], None] | None = None,
) -> FitResult:
    """Train with a progress bar showing the validation AUC."""
    with progress_bar() as progress:
        bar = progress.add_task("training", total=config.max_epochs)

        def on_epoch(row: dict[str, float]) -> None:
            progress.update(
                bar,
                completed=int(row["epoch"]),
                description=f"training (val AUC {row['val_auc']:.3f})",
            )

        return train_classification_run(
            prepared, config, run_dir, resume=resume, on_epoch=on_epoch, prepare_model=prepare_model
        )


def _train_preset(data: Path, out: Path, options: TrainOptions) -> None:
    if options.preset != "medmnist":
        raise InputError(f"--preset {options.preset}: the only preset is medmnist")
    with progress_bar() as progress:
        bar = progress.add_task("MedMNIST v2 protocol", total=options.max_epochs)
        metrics = train_medmnist(
            data, out, options.max_epochs, options.seed, on_epoch=lambda row: progress.advance(bar)
        )
    acc, auc = metrics["accuracy"], metrics["macro_auc"]
    print(f"test ACC {acc:.3f}  AUC {auc:.3f}  ({out / 'metrics.json'})")


def train_classify(data: Path, out: Path, options: TrainOptions) -> None:
    """Train a classifier from a manifest (or a MedMNIST ``.npz`` with ``preset``) into ``out``.

    Raises:
        InputError: segmentation-only options, an unknown preset, or unusable data.
    """
    if options.labels or options.iterations or options.deep_supervision or options.memory_gb:
        raise InputError(
            "--labels, --iterations, --deep-supervision, --memory-gb are for --task segment"
        )
    if options.preset:
        _train_preset(data, out, options)
        return
    seed, folds, resume = options.seed, options.folds, options.resume
    prepared = prepare_with_progress(data, out, seed, options.classes, options.replan)
    record = {"manifest": str(data.resolve()), "classes": prepared.class_names, "seed": seed}
    write_text_atomic(out / DATASET_FILE, json.dumps(record, indent=2))
    config = config_from_plan(
        prepared,
        model_name=options.model_name,
        max_epochs=options.max_epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate or 1e-3,
        max_minutes=options.max_minutes,
        bf16=options.bf16,
        seed=seed,
        init_weights=options.init_weights,
        freeze_backbone=options.freeze_backbone,
        backbone_lr_scale=options.backbone_lr_scale,
    )
    prepare_model = transfer_preparation(config, prepared.class_names)
    if folds:
        if resume:
            raise InputError("--resume is for single runs; rerun --folds from the start")
        with progress_bar() as progress:
            bar = progress.add_task("cross-validation", total=folds * config.max_epochs)
            result = run_cross_validation(
                prepared, config, out, folds, on_fold=lambda f, row: progress.advance(bar)
            )
        pooled = result["pooled_out_of_fold"]
        say(f"{folds}-fold out-of-fold macro AUC {pooled['macro_auc']}: {out / 'cv_metrics.json'}")
        return
    fit = fit_with_progress(prepared, config, out, resume, prepare_model)
    best = fit.history[fit.best_epoch - 1] if fit.best_epoch else {}
    say(f"best epoch {fit.best_epoch}: val AUC {best.get('val_auc', float('nan')):.3f}")
    say(f"model: {out / 'model.safetensors'}  contract: {out / 'model.json'}")
