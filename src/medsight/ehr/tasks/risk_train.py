"""`medsight train DATA --task ehr-risk --labels LABELS -o RUN`: one run, or K folds.

Reads the labels, plans (or reuses ``RUN/plan.json``), encodes (or reuses the cache), then
trains the requested sequence models and the baselines (`risk_run`) or, with ``--folds``,
cross-validates the first model (`risk_folds`); progress bars show the tuning AUROC.
"""

from __future__ import annotations

from pathlib import Path

from medsight.console import progress_bar, say
from medsight.ehr.tasks.risk_config import RiskTrainConfig
from medsight.ehr.tasks.risk_data import RiskData, prepare_risk_data
from medsight.ehr.tasks.risk_folds import run_risk_folds
from medsight.ehr.tasks.risk_run import model_names, train_risk_run
from medsight.errors import InputError
from medsight.tasks.options import TrainOptions, refuse_imaging_options

#: the training wall-time budget per model when --max-minutes is not given
DEFAULT_MAX_MINUTES = 10.0


def risk_configs(prepared: RiskData, options: TrainOptions) -> list[RiskTrainConfig]:
    """One loop config per requested model: the plan's sizes, then the user's overrides."""
    plan = prepared.plan
    return [
        RiskTrainConfig(
            model_name=name,
            max_epochs=options.max_epochs,
            batch_size=options.batch_size or plan.batch_size,
            learning_rate=options.learning_rate or plan.learning_rate,
            seed=options.seed,
            max_minutes=options.max_minutes or DEFAULT_MAX_MINUTES,
            bf16=bool(options.bf16),
            init_weights=options.init_weights,
        )
        for name in model_names(options.model_name, plan.models)
    ]


def _refuse_other_tasks_options(options: TrainOptions) -> None:
    refuse_imaging_options(options, "ehr-risk")
    if not options.labels:
        raise InputError(
            "--task ehr-risk needs --labels LABELS (a MEDS labels parquet/CSV; make one with "
            "`medsight ehr label DATA --task SPEC -o labels.parquet`)"
        )


def train_risk(data: Path, run_dir: Path, options: TrainOptions) -> None:
    """Train a risk run from a MEDS folder and a labels file into ``run_dir``.

    Raises:
        InputError: imaging-only options, no labels, or unusable data (see
            `prepare_risk_data`).
    """
    _refuse_other_tasks_options(options)
    prepared = prepare_risk_data(
        Path(data), Path(options.labels), run_dir, options.replan, options.memory_gb
    )
    n, cached = len(prepared.samples), " (from cache)" if prepared.cache_hit else ""
    say(f"{n} samples encoded{cached}; plan: {run_dir / 'plan.json'}")
    configs = risk_configs(prepared, options)
    if options.folds:
        if options.resume:
            raise InputError("--resume is for single runs; rerun --folds from the start")
        config = configs[0]
        with progress_bar() as progress:
            bar = progress.add_task("cross-validation", total=options.folds * config.max_epochs)
            cv = run_risk_folds(
                prepared, config, run_dir, options.folds, lambda f, row: progress.advance(bar)
            )
        pooled = cv["pooled_out_of_fold"]["auroc"]
        say(f"{options.folds}-fold out-of-fold AUROC {pooled}: {run_dir / 'cv_metrics.json'}")
        return
    with progress_bar() as progress:
        bars = {
            c.model_name: progress.add_task(f"training {c.model_name}", total=c.max_epochs)
            for c in configs
        }

        def on_epoch(name: str, row: dict[str, float]) -> None:
            progress.update(
                bars[name],
                completed=int(row["epoch"]),
                description=f"training {name} (tuning AUROC {row['val_auc']:.3f})",
            )

        result = train_risk_run(prepared, configs, run_dir, options.resume, on_epoch)
    for name, auc in result.tuning_auroc.items():
        shown = "n/a" if auc is None else f"{auc:.3f}"
        say(f"{name} ({result.kinds[name]}): tuning AUROC {shown}")
    say(f"primary model {result.primary}: {run_dir / 'model.safetensors'}")
