"""`medsight train DATA --task text-classify -o RUN`: tokenizer, encoders, baseline, run folder.

Reads DATA (`classify_data`), plans (or reuses ``RUN/plan.json``), trains the subword
tokenizer on the training notes (``RUN/tokenizer.json``; with ``--resume`` the saved one,
with ``--init`` from a run the donor's, so its embeddings keep their meaning), then for each
requested encoder (``--model cnn,bilstm,transformer``; default the plan's) fits through the
one loop in ``RUN/models/{name}/`` (``train_config.json``, ``history.csv``, resumable
``checkpoints/``) and saves ``RUN/models/{name}.safetensors``. The TF-IDF + logistic
baseline is always trained on the same training notes (``RUN/baselines/tfidf_logistic.json``).
Then: every model's probabilities for every note and output (``predictions.parquet``), a
temperature per model and output fitted on the tuning notes (``calibration.json``), the
primary model (best tuning macro-F1 among the encoders) as ``model.safetensors`` with its
``history.csv``/``train_config.json`` copied to RUN, and ``model.json``.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medsight.console import progress_bar, say
from medsight.errors import InputError
from medsight.evaluate.classification.calibration import TemperatureScaler
from medsight.runs.atomic import atomic_path, write_text_atomic
from medsight.runs.weights import save_weights, transfer_preparation
from medsight.tasks.options import TrainOptions, refuse_imaging_options
from medsight.text.baselines.tfidf_logistic import TfidfLogistic
from medsight.text.models.document_classifier import TextModelSpec
from medsight.text.models.subword_tokenizer import (
    TOKENIZER_FILE,
    encode_texts,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from medsight.text.tasks.classify_config import TextClassifyConfig
from medsight.text.tasks.classify_contract import (
    TextClassifyContract,
    library_versions,
    write_contract,
)
from medsight.text.tasks.classify_data import ClassifyData, load_classify_data
from medsight.text.tasks.classify_fit import fit_text_model, macro_f1, predict_probabilities
from medsight.text.tasks.classify_plan import (
    PLAN_FILE,
    TextClassifyPlan,
    make_plan,
    read_plan,
    write_plan,
)
from medsight.text.tasks.classify_weights import (
    MODELS_DIR,
    WEIGHTS_FILE,
    init_source,
)
from medsight.train.run_folder import CHECKPOINTS_DIR, TRAIN_CONFIG_FILE, fit_in_run_folder

PREDICTIONS_FILE = "predictions.parquet"
CALIBRATION_FILE = "calibration.json"
BASELINE = "tfidf-logistic"
BASELINE_FILE = Path("baselines") / "tfidf_logistic.json"
#: the training wall-time budget per model when --max-minutes is not given
DEFAULT_MAX_MINUTES = 10.0


def model_names(requested: str | None, plan_models: list[str]) -> list[str]:
    """``--model`` as a list (one name or a comma list), else the plan's models."""
    names = [n.strip() for n in (requested or "").split(",") if n.strip()] or list(plan_models)
    if len(set(names)) != len(names):
        raise InputError(f"--model {requested}: a model is named twice")
    return names


def plan_for(data: ClassifyData, run_dir: Path, labels: str, replan: bool) -> TextClassifyPlan:
    """``RUN/plan.json`` when it fits the data's outputs (and not ``--replan``), else a new one."""
    path = run_dir / PLAN_FILE
    if path.is_file() and not replan:
        plan = read_plan(path)
        fits = list(plan.outputs) == list(data.classes) and all(
            set(data.classes[o]) <= set(plan.outputs[o]) for o in plan.outputs
        )
        if fits:
            return plan
        say(f"{path}: made for other outputs or classes; planning again")
    plan = make_plan(data, labels)
    write_plan(path, plan)
    return plan


def _tokenizer(
    data: ClassifyData, plan: TextClassifyPlan, run_dir: Path, resume: bool, donor: Path | None
) -> Any:
    path = run_dir / TOKENIZER_FILE
    if resume and path.is_file():
        return load_tokenizer(path)
    if donor is not None:
        tokenizer = load_tokenizer(donor)
        say(f"--init: reusing {donor} (the embeddings were trained with it)")
    else:
        tokenizer = train_tokenizer((data.texts[i] for i in data.indices("train")), plan.vocab_size)
    save_tokenizer(tokenizer, path)
    return tokenizer


def _temperatures(
    probs: list[np.ndarray], targets: np.ndarray, tuning: np.ndarray, outputs: list[str]
) -> dict[str, float]:
    out = {}
    for j, name in enumerate(outputs):
        y = targets[tuning, j]
        keep = y >= 0
        temperature = 1.0
        if keep.sum() >= 2 and np.unique(y[keep]).size >= 2:
            p = probs[j][tuning][keep]
            temperature = TemperatureScaler(inputs="probs").fit(p, y[keep]).temperature_
        out[name] = float(temperature)
    return out


def write_predictions(
    path: Path,
    data: ClassifyData,
    outputs: list[str],
    scores: dict[str, list[np.ndarray]],
    kinds: dict[str, str],
) -> Path:
    """``predictions.parquet``: one row per (note, model, output) with its probabilities."""
    n = len(data)
    groups = {k: [None if v is None else str(v) for v in vals] for k, vals in data.groups.items()}
    parts = []
    for name, per_output in scores.items():
        for j, output in enumerate(outputs):
            columns = {
                "note_id": pa.array(data.note_ids, pa.string()),
                "subject_id": pa.array(data.subjects, pa.string()),
                "split": pa.array([str(s) for s in data.split], pa.string()),
                "model": pa.array([name] * n, pa.string()),
                "kind": pa.array([kinds[name]] * n, pa.string()),
                "output": pa.array([output] * n, pa.string()),
                "label": pa.array(data.labels[output], pa.string()),
                "probabilities": pa.array(per_output[j].tolist(), pa.list_(pa.float64())),
            }
            for key in ("sex", "age", "age_years", "kind"):
                if key in groups:
                    columns[f"group_{key}"] = pa.array(groups[key], pa.string())
            parts.append(pa.table(columns))
    with atomic_path(path) as tmp:
        pq.write_table(pa.concat_tables(parts, promote_options="default"), tmp)
    return path


def train_text_classify(data_path: Path, run_dir: Path, options: TrainOptions) -> None:
    """Train a text-classify run into ``run_dir`` (see the module docstring).

    Raises:
        InputError: other tasks' options, unusable data (`load_classify_data`), a bad
            ``--init``, or ``--resume`` with nothing to resume.
    """
    refuse_imaging_options(options, "text-classify", folds=True)
    run_dir = Path(run_dir)
    if options.resume and not (run_dir / MODELS_DIR).is_dir():
        raise InputError(f"{run_dir}: nothing to resume (no {MODELS_DIR}/ from an earlier run)")
    init_weights, donor = (None, None)
    if options.init_weights is not None:
        init_weights, donor = init_source(Path(options.init_weights))
    data = load_classify_data(Path(data_path), options.labels, options.seed)
    for line in data.notes:
        say(line)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_for(data, run_dir, options.labels, options.replan)
    outputs = list(plan.outputs)
    data.classes = {o: list(plan.outputs[o]) for o in outputs}
    tokenizer = _tokenizer(data, plan, run_dir, options.resume, donor)
    ids = encode_texts(tokenizer, data.texts, plan.max_tokens)
    spec = TextModelSpec(
        vocab_size=tokenizer.get_vocab_size(),
        max_tokens=plan.max_tokens,
        output_sizes=[len(plan.outputs[o]) for o in outputs],
        embed_dim=plan.embed_dim,
        hidden_dim=plan.hidden_dim,
        layers=plan.layers,
        heads=plan.heads,
        dropout=plan.dropout,
    )
    targets = np.stack([data.label_indices(o) for o in outputs], axis=1)
    train, tuning, everything = data.indices("train"), data.indices("tuning"), np.arange(len(data))
    counts = {
        s: int(np.unique(np.asarray(data.subjects, object)[data.indices(s)]).size)
        for s in ("train", "tuning", "test")
    }
    say(
        f"{len(data)} notes, patients train/tuning/test {counts['train']}/{counts['tuning']}/"
        f"{counts['test']}; {len(outputs)} output(s); vocabulary {spec.vocab_size}"
    )
    if not len(train) or not len(tuning):
        raise InputError(f"{data_path}: too few patients to split (need 3 or more)")
    names = model_names(options.model_name, plan.models)
    configs = [
        TextClassifyConfig(
            model_name=name,
            max_epochs=options.max_epochs,
            batch_size=options.batch_size or plan.batch_size,
            learning_rate=options.learning_rate or plan.learning_rate,
            seed=options.seed,
            max_minutes=options.max_minutes or DEFAULT_MAX_MINUTES,
            bf16=bool(options.bf16),
            init_weights=init_weights,
        )
        for name in names
    ]
    scores: dict[str, list[np.ndarray]] = {}
    kinds: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with progress_bar() as progress:
        for config in configs:
            name = config.model_name
            bar = progress.add_task(f"training {name}", total=config.max_epochs)

            def on_epoch(row: dict[str, float], bar: Any = bar, name: str = name) -> None:
                progress.update(
                    bar,
                    completed=int(row["epoch"]),
                    description=f"training {name} (tuning macro-F1 {row['val_macro_f1']:.3f})",
                )

            folder = run_dir / MODELS_DIR / name
            weights = run_dir / MODELS_DIR / f"{name}.safetensors"
            can_resume = options.resume and (folder / CHECKPOINTS_DIR / "last.json").is_file()
            weights.unlink(missing_ok=True)
            fitted = fit_in_run_folder(
                folder,
                config,
                partial(
                    fit_text_model,
                    ids,
                    targets,
                    train,
                    tuning,
                    spec,
                    config,
                    prepare_model=transfer_preparation(config.init_weights),
                ),
                resume=can_resume,
                on_epoch=on_epoch,
            )
            save_weights(fitted.model, weights)
            scores[name] = predict_probabilities(fitted.model, ids, everything, spec.output_sizes)
            kinds[name], seconds[name] = "deep", float(fitted.seconds)
    baseline = TfidfLogistic(seed=options.seed).fit(
        [data.texts[i] for i in train],
        {
            o: [data.labels[o][i] if data.labels[o][i] in plan.outputs[o] else None for i in train]
            for o in outputs
        },
    )
    (run_dir / BASELINE_FILE).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / BASELINE_FILE, json.dumps(baseline.to_json()))
    baseline_probs = baseline.predict_proba(data.texts, plan.outputs)
    scores[BASELINE], kinds[BASELINE] = [baseline_probs[o] for o in outputs], "baseline"

    tuning_f1: dict[str, float | None] = {}
    for name, per_output in scores.items():
        values = [macro_f1(targets[tuning, j], p[tuning]) for j, p in enumerate(per_output)]
        defined = [v for v in values if v is not None]
        tuning_f1[name] = float(np.mean(defined)) if defined else None
    deep = [c.model_name for c in configs]
    primary = max(deep, key=lambda n: -1.0 if tuning_f1[n] is None else float(tuning_f1[n] or 0))
    write_predictions(run_dir / PREDICTIONS_FILE, data, outputs, scores, kinds)
    calibration = {name: _temperatures(p, targets, tuning, outputs) for name, p in scores.items()}
    write_text_atomic(
        run_dir / CALIBRATION_FILE,
        json.dumps(
            {
                "method": "temperature scaling per output, fitted on the tuning notes",
                "temperatures": calibration,
            },
            indent=2,
        )
        + "\n",
    )
    shutil.copyfile(run_dir / MODELS_DIR / f"{primary}.safetensors", run_dir / WEIGHTS_FILE)
    for file in ("history.csv", TRAIN_CONFIG_FILE):
        source = run_dir / MODELS_DIR / primary / file
        if source.is_file():
            shutil.copyfile(source, run_dir / file)
    contract = TextClassifyContract(
        model_name=primary,
        class_names=plan.outputs[outputs[0]],
        outputs=plan.outputs,
        models=deep,
        baselines=[BASELINE],
        spec=spec,
        tuning_macro_f1=tuning_f1,
        data=str(data_path),
        labels=options.labels,
        seed=options.seed,
        versions=library_versions(),
        train_seconds=seconds,
    )
    write_contract(run_dir, contract)
    (run_dir / "model.onnx").unlink(missing_ok=True)  # an export of earlier weights
    for name in scores:
        f1 = tuning_f1[name]
        extra = f", {seconds[name]:.0f} s" if name in seconds else ""
        say(
            f"{name} ({kinds[name]}): tuning macro-F1 {'n/a' if f1 is None else f'{f1:.3f}'}{extra}"
        )
    say(f"primary model {primary}: {run_dir / WEIGHTS_FILE}")
