"""`medsight demo`: the whole imaging pipeline on the embedded synthetic chest-CT data.

synth -> patient-level split -> DICOM read + preprocess (cached) -> train lungct-cnn ->
test-split evaluation -> Grad-CAM -> report.html. Every stage lives in its own package;
this module only wires them and prints what happened.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import typer
from rich.table import Table

from medsight.cli.console import STATE, console, progress_bar, say
from medsight.cli.plan import build_plan_for_cases
from medsight.data.manifest import Case, read_manifest
from medsight.data.patient_split import patient_split, write_splits
from medsight.data.volume_loading import load_cases, preprocess_series
from medsight.evaluate.classification_metrics import classification_metrics
from medsight.evaluate.figures import confusion_figure, roc_figure, training_curves_figure
from medsight.evaluate.html_report import write_report
from medsight.explain.gradcam import gradcam_volume, top_slice
from medsight.explain.overlay import overlay_png
from medsight.io.atomic import write_text_atomic
from medsight.models.checkpoint import ModelContract, library_versions, save_checkpoint
from medsight.models.predictor import predict_probabilities
from medsight.preprocess.contract import PreprocessContract
from medsight.preprocess.plan import Plan, read_plan, write_plan
from medsight.synth.chest_ct import CLASSES, write_chest_ct_dataset
from medsight.train.classifier_fit import fit_classifier
from medsight.train.config import TrainConfig


def _ensure_plan(path: Path, cases: list[Case], seed: int, replan: bool) -> Plan:
    """The run's plan: read it if present (a person may have edited it), else make it."""
    if path.is_file() and not replan:
        say(f"plan: using {path}")
        return read_plan(path)
    plan = build_plan_for_cases(cases, "classify", sample=40, seed=seed)
    write_plan(path, plan)
    say(f"plan: wrote {path} (input {plan.preprocess.shape} at {plan.preprocess.spacing_mm} mm)")
    return plan


def _ensure_data(data_dir: Path, cases: int, seed: int) -> tuple[Path, bool]:
    """Generate the dataset unless ``data_dir`` already holds the one asked for.

    Returns:
        The manifest path, and whether the data was (re)generated now.
    """
    marker = data_dir / "synth.json"
    wanted = {"generator": "chest-ct", "cases": cases, "seed": seed, "size": "small"}
    if (
        marker.is_file()
        and json.loads(marker.read_text()) == wanted
        and (data_dir / "labels.csv").is_file()
    ):
        say(f"data: reusing {data_dir}")
        return data_dir / "labels.csv", False
    with progress_bar() as progress:
        task = progress.add_task("generating synthetic chest CT", total=cases)
        labels = write_chest_ct_dataset(
            data_dir, cases, seed, "small", on_case=lambda: progress.advance(task)
        )
    write_text_atomic(marker, json.dumps(wanted))
    return labels, True


def _heatmap_gallery(
    model: torch.nn.Module,
    arrays: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    cases: list[Case],
    contract: PreprocessContract,
    per_kind: int = 3,
) -> list[dict]:
    """Grad-CAM overlays for a few correct and a few wrong test predictions.

    The heatmap comes from the model's input (lung fields only); it is drawn over the same
    crop without the lung mask, re-read from the DICOM series, so the reader sees the anatomy.
    """
    predicted = probs.argmax(1)
    display_contract = contract.model_copy(update={"mask_outside_lungs": False})
    gallery = []
    for correct in (True, False):
        picks = [i for i in range(len(y_true)) if (predicted[i] == y_true[i]) == correct]
        # abnormal cases first: their heatmaps show whether the model looks at the nodule
        picks.sort(key=lambda i: (y_true[i] == 0, -probs[i].max()))
        for i in picks[:per_kind]:
            x = np.asarray(arrays[i], dtype=np.float32)[None, None]
            layer = str(model.cam_layer)
            heat = gradcam_volume(model, torch.from_numpy(x), int(predicted[i]), layer)
            k = top_slice(heat)
            display = preprocess_series(cases[i].series_dir, display_contract)
            truth, guess = CLASSES[y_true[i]], CLASSES[predicted[i]]
            p = probs[i, predicted[i]]
            title = f"{cases[i].case_id}: {truth}, predicted {guess} (p={p:.2f})"
            gallery.append(
                {
                    "png": overlay_png(display[k], heat[k], title),
                    "caption": f"{title}; slice {k} of the model input, where Grad-CAM peaks",
                    "correct": correct,
                }
            )
    return gallery


def demo(
    out: Path = typer.Option(
        Path("runs/demo"), "--out", "-o", help="Run folder (data, cache and results)."
    ),
    cases: int = typer.Option(300, "--cases", min=20, help="Number of synthetic scans."),
    seed: int = typer.Option(0, "--seed", help="Seed for data, split and training."),
    model_name: str = typer.Option(
        "", "--model", help="Registered model to train (default: the plan's)."
    ),
    epochs: int = typer.Option(
        40, "--epochs", min=1, help="Maximum epochs (early stopping may end sooner)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Small version for tests: 60 cases, 3 epochs."
    ),
) -> None:
    """Generate data, train, evaluate and explain a lung-CT classifier; write RUN/report.html."""
    started = time.perf_counter()
    if quick:
        cases, epochs = min(cases, 60), min(epochs, 3)
    out.mkdir(parents=True, exist_ok=True)
    labels_csv, fresh = _ensure_data(out / "data", cases, seed)
    manifest = read_manifest(labels_csv)
    splits = patient_split(manifest, seed)
    write_splits(out / "splits.csv", manifest, splits)
    # the plan sees training and validation cases only: nothing about the test split leaks
    plan = _ensure_plan(
        out / "plan.json", [c for c in manifest if splits[c.case_id] != "test"], seed, replan=fresh
    )
    contract = plan.preprocess
    with progress_bar() as progress:
        task = progress.add_task("reading DICOM + preprocessing", total=len(manifest))
        arrays, hits = load_cases(
            manifest, contract, out / "cache", workers=2, on_case=lambda: progress.advance(task)
        )
    say(f"preprocessed {len(manifest)} series ({hits} from cache)")
    y = np.array([CLASSES.index(c.label) for c in manifest])
    idx = {
        s: np.array([i for i, c in enumerate(manifest) if splits[c.case_id] == s])
        for s in ("train", "val", "test")
    }
    model_name = model_name or plan.model_name
    config = TrainConfig(
        model_name=model_name,
        model_kwargs={"depth": plan.network_depth} if model_name == "lungct-cnn" else {},
        batch_size=plan.batch_size,
        max_epochs=epochs,
        seed=seed,
    )
    with progress_bar() as progress:
        task = progress.add_task("training", total=epochs)

        def on_epoch(row: dict[str, float]) -> None:
            progress.update(task, advance=1, description=f"training (val AUC {row['val_auc']:.3f})")

        fit = fit_classifier(
            arrays[idx["train"]],
            y[idx["train"]],
            arrays[idx["val"]],
            y[idx["val"]],
            len(CLASSES),
            config,
            on_epoch,
        )
    model_contract = ModelContract(
        model_name=model_name,
        model_kwargs=config.model_kwargs,
        class_names=list(CLASSES),
        preprocess=contract,
        seed=seed,
        versions=library_versions(),
        extra={"best_epoch": fit.best_epoch},
    )
    save_checkpoint(out, fit.model, model_contract)
    write_text_atomic(out / "train_config.json", config.model_dump_json(indent=2))
    _write_history(out / "history.csv", fit.history)
    test = idx["test"]
    probs = predict_probabilities(fit.model, arrays[test])
    metrics = classification_metrics(y[test], probs, list(CLASSES))
    metrics["split"] = "test"
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    gallery = _heatmap_gallery(
        fit.model, arrays[test], y[test], probs, [manifest[i] for i in test], contract
    )
    elapsed = time.perf_counter() - started
    n_patients = len({c.patient_id for c in manifest})
    summary = {
        "dataset": f"synthetic chest CT, {len(manifest)} scans of {n_patients} patients",
        "split (by patient)": ", ".join(f"{s} {len(idx[s])}" for s in ("train", "val", "test")),
        "model": model_name,
        "epochs run (best)": f"{len(fit.history)} ({fit.best_epoch})",
        "training time": f"{fit.seconds / 60:.1f} min",
        "total time": f"{elapsed / 60:.1f} min",
    }
    report = write_report(
        out / "report.html",
        {
            "title": "medsight demo: lung-CT nodule classification",
            "summary": summary,
            "metrics": metrics,
            "figures": {
                "roc": roc_figure(y[test], probs, list(CLASSES)),
                "confusion": confusion_figure(metrics["confusion_matrix"], list(CLASSES)),
                "curves": training_curves_figure(fit.history),
            },
            "heatmaps": gallery,
            "model": {
                "name": model_name,
                "parameters": sum(p.numel() for p in fit.model.parameters()),
                "seed": seed,
                **model_contract.versions,
            },
            "generated_by": f"medsight {model_contract.versions['medsight']}",
        },
    )
    _print_summary(metrics, elapsed, report)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    lines = []
    if history:
        keys = list(history[0])
        lines.append(",".join(keys))
        lines += [",".join(f"{row[k]:.6g}" for k in keys) for row in history]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _print_summary(metrics: dict, elapsed: float, report: Path) -> None:
    table = Table(title="test split")
    for column in ("class", "precision", "recall", "F1", "AUC", "n"):
        table.add_column(column, justify="right" if column != "class" else "left")
    for name, row in metrics["per_class"].items():
        auc = "-" if row["auc"] is None else f"{row['auc']:.3f}"
        table.add_row(
            name,
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            auc,
            str(row["support"]),
        )
    if not STATE.quiet:
        console.print(table)
    macro = metrics["macro_auc"]
    macro_text = "n/a" if macro is None else f"{macro:.3f}"
    print(f"accuracy {metrics['accuracy']:.3f}  macro AUC {macro_text}  ({elapsed / 60:.1f} min)")
    print(f"report: {report}")
