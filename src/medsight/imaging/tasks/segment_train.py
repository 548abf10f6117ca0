"""`medsight train DATA --task segment -o RUN`: plan, cache, fit, choose post-processing."""

from __future__ import annotations

import json
from pathlib import Path

from medsight.console import progress_bar, say, stage_ticker
from medsight.errors import InputError
from medsight.imaging.data.segmentation_manifest import parse_labels
from medsight.imaging.evaluate.postprocess_selection import choose_for_run, choose_postprocess
from medsight.imaging.inference.postprocess import POSTPROCESS_FILE
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.tasks.segment_data import SegmentationData, prepare_segmentation_data
from medsight.imaging.tasks.segment_folds import run_segmentation_cross_validation
from medsight.imaging.tasks.segment_run import config_from_plan, train_segmentation_run
from medsight.runs.atomic import write_text_atomic
from medsight.train.loop import FitResult

#: what `medsight evaluate` reads to find the dataset of a segmentation run
SEGMENT_DATASET_FILE = "dataset.json"


def prepare_segment_with_progress(
    data: Path,
    run_dir: Path,
    seed: int,
    labels: str,
    replan: bool,
    memory_gb: float,
) -> SegmentationData:
    """`prepare_segmentation_data` with a progress bar per stage."""
    with progress_bar() as progress:
        stage = stage_ticker(progress)
        prepared = prepare_segmentation_data(
            data,
            run_dir,
            seed,
            labels=parse_labels(labels) if labels else None,
            replan=replan,
            memory_bytes=int(memory_gb * 2**30) if memory_gb else None,
            on_stage=stage,
        )
    n, hits = len(prepared.cases), prepared.cache_hits
    say(f"{n} cases ({hits} from cache); structures {', '.join(prepared.label_names)}")
    say(f"plan: {run_dir / 'plan.json'}")
    record = {
        "task": "segment",
        "data": str(data.resolve()),
        "labels": dict(zip(prepared.label_names, prepared.label_values, strict=True)),
        "seed": seed,
    }
    write_text_atomic(run_dir / SEGMENT_DATASET_FILE, json.dumps(record, indent=2))
    return prepared


def fit_segment_with_progress(
    prepared: SegmentationData, run_dir: Path, resume: bool, **overrides: object
) -> FitResult:
    """Train with a progress bar showing the validation Dice, then choose post-processing."""
    config = config_from_plan(prepared.plan, **overrides)
    with progress_bar() as progress:
        bar = progress.add_task("training", total=config.max_epochs)

        def on_epoch(row: dict[str, float]) -> None:
            progress.update(
                bar,
                completed=int(row["epoch"]),
                description=f"training (val Dice {row['val_dice']:.3f})",
            )

        fit = train_segmentation_run(prepared, config, run_dir, resume=resume, on_epoch=on_epoch)
    say("choosing post-processing on the validation split")
    val = prepared.indices("val")
    rules = choose_for_run(
        Segmenter(run_dir, overlap=config.overlap, postprocess=False),
        prepared.images.subset(val),
        prepared.labels.subset(val),
        prepared.plan.preprocess.spacing_mm,
    )
    write_text_atomic(run_dir / POSTPROCESS_FILE, rules.model_dump_json(indent=2))
    for note in rules.notes:
        say(f"  {note}")
    return fit


def cross_validate_segment(
    prepared: SegmentationData, run_dir: Path, folds: int, **overrides: object
) -> dict:
    """K fold models (an ensemble) and post-processing chosen on their OOF predictions."""
    config = config_from_plan(prepared.plan, **overrides)
    write_text_atomic(run_dir / "train_config.json", config.model_dump_json(indent=2))
    with progress_bar() as progress:
        bar = progress.add_task("cross-validation", total=folds * config.max_epochs)
        result, predictions, references = run_segmentation_cross_validation(
            prepared, config, run_dir, folds, on_fold=lambda f, row: progress.advance(bar)
        )
    rules = choose_postprocess(
        predictions, references, prepared.plan.preprocess.spacing_mm, prepared.class_names
    )
    write_text_atomic(run_dir / POSTPROCESS_FILE, rules.model_dump_json(indent=2))
    return result


def train_segment(
    data: Path,
    out: Path,
    *,
    labels: str,
    seed: int,
    resume: bool,
    replan: bool,
    memory_gb: float,
    folds: int = 0,
    **overrides: object,
) -> None:
    """The segment branch of `medsight train`."""
    prepared = prepare_segment_with_progress(data, out, seed, labels, replan, memory_gb)
    if folds:
        if resume:
            raise InputError("--resume is for single runs; rerun --folds from the start")
        result = cross_validate_segment(prepared, out, folds, seed=seed, **overrides)
        pooled = ", ".join(f"{n} {d:.3f}" for n, d in result["pooled_out_of_fold_dice"].items())
        say(f"{folds}-fold out-of-fold Dice: {pooled} ({out / 'cv_metrics.json'})")
        return
    fit = fit_segment_with_progress(prepared, out, resume, seed=seed, **overrides)
    best = fit.history[fit.best_epoch - 1] if fit.best_epoch else {}
    say(f"best epoch {fit.best_epoch}: val Dice {best.get('val_dice', float('nan')):.3f}")
    say(f"model: {out / 'model.safetensors'}  contract: {out / 'model.json'}")
