"""Train a risk run end to end and leave a folder prediction and evaluation use on their own.

For each requested sequence model (``--model gru,lstm``; default the plan's ``models``):
fit through the one loop in ``RUN/models/{name}/`` (``train_config.json``, ``history.csv``,
TensorBoard, resumable ``checkpoints/``) and save ``RUN/models/{name}.safetensors``. Then:
the baselines (``RUN/baselines/``), every model's score for every sample
(``predictions.parquet``), the primary model (best tuning AUROC) as ``model.safetensors``
with its ``history.csv``/``train_config.json`` copied to RUN, ``calibration.json`` (fitted
on the primary's tuning scores) and ``model.json``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from medsight.console import say
from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.tasks.risk_calibration import fit_risk_calibration
from medsight.ehr.tasks.risk_codes import write_code_descriptions
from medsight.ehr.tasks.risk_config import RiskTrainConfig
from medsight.ehr.tasks.risk_contract import RiskContract, library_versions, write_contract
from medsight.ehr.tasks.risk_data import RiskData
from medsight.ehr.tasks.risk_fit import fit_risk_model, predict_scores, risk_auc
from medsight.ehr.tasks.risk_weights import MODELS_DIR
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path
from medsight.runs.contract import WEIGHTS
from medsight.runs.weights import save_weights, transfer_preparation
from medsight.train.run_folder import CHECKPOINTS_DIR, TRAIN_CONFIG_FILE, fit_in_run_folder

PREDICTIONS_FILE = "predictions.parquet"
SEX_NAMES = {1: "F", 2: "M"}


@dataclass
class RiskRunResult:
    """What a risk run trained: scores per model, tuning AUROCs, the primary model."""

    primary: str
    scores: dict[str, np.ndarray]
    kinds: dict[str, str]
    tuning_auroc: dict[str, float | None]
    best_epochs: dict[str, int] = field(default_factory=dict)


def model_names(requested: str | None, plan_models: list[str]) -> list[str]:
    """``--model`` as a list (one name or a comma list), else the plan's models."""
    names = [n.strip() for n in (requested or "").split(",") if n.strip()] or list(plan_models)
    if len(set(names)) != len(names):
        raise InputError(f"--model {requested}: a model is named twice")
    return names


def _fit_one(
    prepared: RiskData,
    config: RiskTrainConfig,
    run_dir: Path,
    resume: bool,
    on_epoch: Callable[[str, dict[str, float]], None] | None,
) -> tuple[nn.Module, int]:
    name = config.model_name
    folder = run_dir / MODELS_DIR / name
    weights = run_dir / MODELS_DIR / f"{name}.safetensors"
    # a model that finished before an interruption resumes to its final state at once (the
    # loop stops on its saved patience or epochs); one not yet begun starts afresh
    can_resume = resume and (folder / CHECKPOINTS_DIR / "last.json").is_file()
    weights.unlink(missing_ok=True)
    fit = fit_in_run_folder(
        folder,
        config,
        partial(
            fit_risk_model,
            prepared.samples,
            prepared.indices("train"),
            prepared.indices("tuning"),
            prepared.plan.model,
            config,
            prepare_model=transfer_preparation(config.init_weights),
        ),
        resume=can_resume,
        on_epoch=(lambda row: on_epoch(name, row)) if on_epoch else None,
    )
    save_weights(fit.model, weights)
    return fit.model, fit.best_epoch


def write_predictions(
    path: Path, samples: EncodedSamples, scores: dict[str, np.ndarray], kinds: dict[str, str]
) -> Path:
    """``predictions.parquet``: one row per (sample, model) (columns in the design doc)."""
    n = len(samples)
    label = np.asarray(samples.label)
    sex = [SEX_NAMES.get(int(s)) for s in np.asarray(samples.sex)]
    age = np.asarray(samples.age_years, np.float64)
    parts = []
    for name, score in scores.items():
        parts.append(
            pa.table(
                {
                    "subject_id": pa.array(np.asarray(samples.subject_id), pa.int64()),
                    "prediction_time": pa.array(
                        np.asarray(samples.prediction_time).astype("datetime64[us]"),
                        pa.timestamp("us"),
                    ),
                    "split": pa.array(np.asarray(samples.split).astype(str), pa.string()),
                    "label": pa.array(label == 1, pa.bool_(), mask=label < 0),
                    "sex": pa.array(sex, pa.string()),
                    "age_years": pa.array(age, pa.float64(), mask=~np.isfinite(age)),
                    "model": pa.array([name] * n, pa.string()),
                    "kind": pa.array([kinds[name]] * n, pa.string()),
                    "score": pa.array(np.asarray(score, np.float64), pa.float64()),
                }
            )
        )
    with atomic_path(path) as tmp:
        pq.write_table(pa.concat_tables(parts), tmp)
    return path


def _baselines(prepared: RiskData, run_dir: Path, seed: int) -> dict[str, np.ndarray]:
    try:
        from medsight.ehr.baselines.train_baselines import train_baselines
    except ImportError:  # the baselines package is optional while it is being written
        say("baselines: not available in this build; trained the sequence models only")
        return {}
    plan = prepared.plan
    return train_baselines(
        prepared.samples,
        run_dir,
        plan.model.vocab_size,
        seed,
        code_names=["<padding>", "<unknown>", *plan.vocabulary],
    )


def train_risk_run(
    prepared: RiskData,
    configs: list[RiskTrainConfig],
    run_dir: Path,
    resume: bool = False,
    on_epoch: Callable[[str, dict[str, float]], None] | None = None,
    baselines: bool = True,
) -> RiskRunResult:
    """Fit every configured model, the baselines, and write the run folder (module docstring).

    Raises:
        InputError: ``resume`` with nothing to resume, or with other settings; calibration
            without both outcomes on tuning.
    """
    samples = prepared.samples
    if resume and not (run_dir / MODELS_DIR).is_dir():
        raise InputError(f"{run_dir}: nothing to resume (no {MODELS_DIR}/ from an earlier run)")
    everything = np.arange(len(samples))
    tuning = prepared.indices("tuning")
    y_tuning = np.asarray(samples.label)[tuning]
    scores: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    aucs: dict[str, float | None] = {}
    epochs: dict[str, int] = {}
    models: dict[str, nn.Module] = {}
    for config in configs:
        model, best_epoch = _fit_one(prepared, config, run_dir, resume, on_epoch)
        name = config.model_name
        models[name], epochs[name] = model, best_epoch
        scores[name], kinds[name] = predict_scores(model, samples, everything), "sequence"
        aucs[name] = risk_auc(y_tuning, scores[name][tuning])
    primary = max(aucs, key=lambda n: -1.0 if aucs[n] is None else float(aucs[n] or 0.0))
    if baselines:
        for name, score in _baselines(prepared, run_dir, configs[0].seed).items():
            scores[name], kinds[name] = np.asarray(score, np.float64), "baseline"
            aucs[name] = risk_auc(y_tuning, scores[name][tuning])
    write_predictions(run_dir / PREDICTIONS_FILE, samples, scores, kinds)

    calibration = fit_risk_calibration(scores[primary][tuning], y_tuning)
    calibration.save(run_dir)
    save_weights(models[primary], run_dir / WEIGHTS)
    for name in ("history.csv", TRAIN_CONFIG_FILE):
        source = run_dir / MODELS_DIR / primary / name
        if source.is_file():
            shutil.copyfile(source, run_dir / name)
    contract = RiskContract(
        model_name=primary,
        models=[c.model_name for c in configs],
        baselines=[n for n, k in kinds.items() if k == "baseline"],
        label_definition=prepared.label_definition(),
        data=str(prepared.data),
        labels=str(prepared.labels_path),
        tuning_auroc=aucs,
        seed=configs[0].seed,
        versions=library_versions(),
    )
    write_contract(run_dir, contract)
    write_code_descriptions(run_dir, prepared.dataset, prepared.plan.vocabulary)
    (run_dir / "model.onnx").unlink(missing_ok=True)  # an export of earlier weights
    return RiskRunResult(primary, scores, kinds, aucs, epochs)
