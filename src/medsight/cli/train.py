"""`medsight train DATA --task classify -o RUN`: train a classifier from a manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import typer

from medsight.console import progress_bar, say, stage_ticker
from medsight.errors import InputError
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData, prepare_classification_data
from medsight.imaging.tasks.classify_fit import FitResult
from medsight.imaging.tasks.classify_folds import run_cross_validation
from medsight.imaging.tasks.classify_run import train_classification_run
from medsight.imaging.tasks.classify_setup import config_from_plan
from medsight.imaging.tasks.medmnist_run import train_medmnist
from medsight.imaging.tasks.segment_train import train_segment
from medsight.imaging.tasks.transfer_setup import transfer_preparation
from medsight.runs.atomic import write_text_atomic


def prepare_with_progress(
    data: Path, run_dir: Path, seed: int, classes: list[str] | None, replan: bool
) -> ClassificationData:
    """`prepare_classification_data` with a progress bar per stage."""
    with progress_bar() as progress:
        stage = stage_ticker(progress)
        prepared = prepare_classification_data(data, run_dir, seed, classes, replan, stage)
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


def train(
    data: Path = typer.Argument(
        ...,
        help="Manifest CSV (path,label[,patient_id,split,sex,age]) or a folder with labels.csv.",
    ),
    task: str = typer.Option(
        "classify", "--task", help="classify, or segment (DATA holds images with label maps)."
    ),
    preset: str = typer.Option(
        "", "--preset", help="medmnist: DATA is a MedMNIST .npz, trained with the v2 protocol."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to create or resume."),
    model_name: str = typer.Option("", "--model", help="Registered model (default: the plan's)."),
    epochs: int = typer.Option(40, "--epochs", min=1, help="Maximum epochs."),
    batch_size: int = typer.Option(0, "--batch-size", min=0, help="Batch size (0: the plan's)."),
    learning_rate: float = typer.Option(
        0.0, "--lr", min=0.0, help="Learning rate (0: 1e-3 to classify, 3e-3 to segment)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of split, batches and augmentation."),
    classes: str = typer.Option(
        "", "--classes", help="Class names in output order, comma-separated."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    init: Path = typer.Option(
        None, "--init", help="Start from these safetensors weights (head replaced for new classes)."
    ),
    freeze: bool = typer.Option(
        False, "--freeze-backbone", help="Train only the head (with --init)."
    ),
    backbone_lr_scale: float = typer.Option(
        1.0, "--backbone-lr-scale", min=0.0, help="Backbone learning rate = --lr x this."
    ),
    folds: int = typer.Option(
        0, "--folds", min=0, help="K-fold cross-validation on train+val (K models, ensembled)."
    ),
    replan: bool = typer.Option(False, "--replan", help="Remake plan.json even if --out has one."),
    labels: str = typer.Option(
        "", "--labels", help="segment: label names and values, e.g. lung=1,nodule=2."
    ),
    max_minutes: float = typer.Option(
        0.0, "--max-minutes", min=0.0, help="Training wall-time budget (0: 10 minutes)."
    ),
    memory_gb: float = typer.Option(
        0.0, "--memory-gb", min=0.0, help="segment: memory one case may use (0: half of free)."
    ),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast (opt-in on CPU)."),
    iterations: int = typer.Option(
        0, "--iterations", min=0, help="segment: batches per epoch (0: 50)."
    ),
    deep_supervision: bool = typer.Option(
        False, "--deep-supervision", help="segment: deep supervision (with --model dynunet)."
    ),
) -> None:
    """Train a classifier or a segmentation network: split by patient, plan, cache, fit."""
    if task not in ("classify", "segment"):
        raise InputError(f"--task {task}: use classify or segment")
    if task == "segment":
        if preset or init:
            raise InputError("--preset and --init are for --task classify")
        train_segment(
            data,
            out,
            labels=labels,
            seed=seed,
            resume=resume,
            replan=replan,
            memory_gb=memory_gb,
            folds=folds,
            model_name=model_name or None,
            max_epochs=epochs,
            batch_size=batch_size or None,
            learning_rate=learning_rate or None,
            max_minutes=max_minutes or None,
            bf16=bf16 or None,
            iterations_per_epoch=iterations or None,
            deep_supervision=deep_supervision or None,
        )
        return
    if preset:
        if preset != "medmnist":
            raise InputError(f"--preset {preset}: the only preset is medmnist")
        with progress_bar() as progress:
            bar = progress.add_task("MedMNIST v2 protocol", total=epochs)
            metrics = train_medmnist(
                data, out, epochs, seed, on_epoch=lambda row: progress.advance(bar)
            )
        acc, auc = metrics["accuracy"], metrics["macro_auc"]
        print(f"test ACC {acc:.3f}  AUC {auc:.3f}  ({out / 'metrics.json'})")
        return
    class_list = classes.split(",") if classes else None
    prepared = prepare_with_progress(data, out, seed, class_list, replan)
    record = {"manifest": str(data.resolve()), "classes": prepared.class_names, "seed": seed}
    write_text_atomic(out / "dataset.json", json.dumps(record, indent=2))
    config = config_from_plan(
        prepared,
        model_name=model_name or None,
        max_epochs=epochs,
        batch_size=batch_size or None,
        learning_rate=learning_rate or 1e-3,
        max_minutes=max_minutes or None,
        bf16=bf16 or None,
        seed=seed,
        init_weights=init,
        freeze_backbone=freeze,
        backbone_lr_scale=backbone_lr_scale,
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
