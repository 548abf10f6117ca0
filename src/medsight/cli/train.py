"""`medsight train DATA --task TASK -o RUN`: train a registered task's model from DATA.

Under ``torchrun`` every process runs this command; the engine trains one model
data-parallel (`medsight.train.distributed`). Rank 0 owns RUN. The task code around the
engine (plan, cache, final model, reports) writes into its run folder on every rank, so
ranks other than 0 are given a scratch folder of their own instead (deleted when they
finish): they never write RUN, and a node other than rank 0's needs the data, not RUN. They
also print nothing but errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from medsight.tasks.options import TrainOptions


def train(
    data: Path = typer.Argument(
        ...,
        help="Manifest CSV (path,label[,patient_id,split,sex,age]) or a folder with labels.csv; "
        "ehr-risk: a MEDS folder (from `medsight ehr import` or `medsight synth ehr`); "
        "text-classify: a notes table with label columns, a synthetic radiology/feedback "
        ".jsonl or a reports/ + labels.json folder; text-ner: JSONL of text + spans.",
    ),
    task: str = typer.Option(
        "classify",
        "--task",
        help="classify, segment (images with label maps), ehr-risk (MEDS folder + --labels), "
        "text-classify (documents -> labels) or text-ner (entity / PHI tagger).",
    ),
    preset: str = typer.Option(
        "", "--preset", help="medmnist: DATA is a MedMNIST .npz, trained with the v2 protocol."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to create or resume."),
    model_name: str = typer.Option(
        "",
        "--model",
        help="Registered model (default: the plan's); ehr-risk: one or a comma list of "
        "gru, lstm, transformer, retain; text-classify: cnn, bilstm, transformer (or a "
        "comma list); text-ner: bilstm-crf or transformer.",
    ),
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
        0,
        "--folds",
        min=0,
        help="K-fold cross-validation on train+val (K models, ensembled); folds already "
        "trained by --fold with the same options are gathered, not retrained.",
    ),
    fold: int = typer.Option(
        0,
        "--fold",
        min=0,
        help="With --folds K: train only fold k (1..K), e.g. one scheduler job per fold; "
        "then `--folds K` without --fold gathers them.",
    ),
    replan: bool = typer.Option(False, "--replan", help="Remake plan.json even if --out has one."),
    labels: str = typer.Option(
        "",
        "--labels",
        help="segment: label names and values, e.g. lung=1,nodule=2; ehr-risk: the labels "
        "file (MEDS label parquet/CSV, from `medsight ehr label`); text-classify: the label "
        "columns (COL[,COL]); text-ner: entities or phi.",
    ),
    max_minutes: float = typer.Option(
        0.0, "--max-minutes", min=0.0, help="Training wall-time budget (0: 10 minutes)."
    ),
    memory_gb: float = typer.Option(
        0.0, "--memory-gb", min=0.0, help="segment: memory one case may use (0: half of free)."
    ),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="auto, fp32 or bf16 (convolutions and matmuls in bf16; norms, softmax and loss "
        "in fp32). auto is bf16 for image classification where the CPU has native bf16 "
        "(AVX512_BF16/AMX; measured 1.2-1.3x faster), fp32 elsewhere.",
    ),
    iterations: int = typer.Option(
        0, "--iterations", min=0, help="segment: batches per epoch (0: 50)."
    ),
    deep_supervision: bool = typer.Option(
        False, "--deep-supervision", help="segment: deep supervision (with --model dynunet)."
    ),
) -> None:
    """Train a classifier, a segmentation network or EHR risk models: plan, cache, fit."""
    import shutil
    import tempfile

    from medsight.cli.task_lookup import get_task
    from medsight.console import STATE, say
    from medsight.errors import InputError
    from medsight.hardware import resolve_precision
    from medsight.tasks.options import TrainOptions
    from medsight.train.cross_validation import FoldFinished, FoldSchedule, scheduled_folds
    from medsight.train.distributed import PeerLostError, torchrun_launch

    if fold and not folds:
        raise InputError(f"--fold {fold}: give the number of folds too (--folds K)")
    if fold > folds:
        raise InputError(f"--fold {fold}: folds are numbered 1 to --folds {folds}")
    if fold and task == "segment":
        raise InputError(
            "--fold: not for --task segment (its post-processing is chosen from every fold's "
            "predictions in one process); run --folds K"
        )
    bf16 = resolve_precision(precision, auto_bf16=task == "classify" and not preset) == "bf16"
    options = TrainOptions(
        model_name=model_name or None,
        max_epochs=epochs,
        batch_size=batch_size or None,
        learning_rate=learning_rate or None,
        seed=seed,
        classes=classes.split(",") if classes else None,
        resume=resume,
        init_weights=init,
        freeze_backbone=freeze,
        backbone_lr_scale=backbone_lr_scale,
        folds=folds,
        replan=replan,
        preset=preset,
        labels=labels,
        max_minutes=max_minutes or None,
        memory_gb=memory_gb,
        bf16=bf16 or None,
        iterations=iterations or None,
        deep_supervision=deep_supervision or None,
    )
    # a fold is gathered only if it was trained with these options on the same data
    schedule = FoldSchedule(
        only=fold or None,
        settings="" if task == "segment" else _fold_settings(data, task, options),
    )
    launch = torchrun_launch()
    try:
        with scheduled_folds(schedule):
            if launch is None or launch.rank == 0:
                get_task(task).train(data, out, options)
            else:
                STATE.quiet = True
                with tempfile.TemporaryDirectory(prefix=f"medsight-rank{launch.rank}-") as tmp:
                    scratch = Path(tmp) / out.name
                    # RUN's plan, which a person may have edited, where this node can read it
                    # (the ranks then check that they train with the same settings)
                    if (out / "plan.json").is_file() and not replan:
                        scratch.mkdir()
                        shutil.copyfile(out / "plan.json", scratch / "plan.json")
                    get_task(task).train(data, scratch, options)
    except FoldFinished as finished:
        say(
            f"fold {finished.number} of {folds}: {out / finished.folder}; when every fold is "
            f"done, `medsight train ... --folds {folds}` (without --fold) gathers them"
        )
    except PeerLostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _fold_settings(data: Path, task: str, options: TrainOptions) -> str:
    """What must match for a finished fold to be gathered: data, task and every option
    except those that do not change a fold's model (``--fold``, ``--resume``, ``--replan``)."""
    import dataclasses
    import json

    fields = dataclasses.asdict(options)
    for unused in ("resume", "replan"):
        fields.pop(unused)
    record = {"data": str(data.resolve()), "task": task, **fields}
    return json.dumps(record, sort_keys=True, default=str)
