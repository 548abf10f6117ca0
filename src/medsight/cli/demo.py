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
from medsight.cli.train import config_from_plan, fit_with_progress, prepare_with_progress
from medsight.data.manifest import Case
from medsight.data.volume_cache import CachedVolumes
from medsight.data.volume_loading import preprocess_image
from medsight.evaluate.classification_metrics import classification_metrics
from medsight.evaluate.figures import confusion_figure, roc_figure, training_curves_figure
from medsight.evaluate.html_report import write_report
from medsight.explain.gradcam import gradcam_volume, top_slice
from medsight.explain.overlay import overlay_png
from medsight.io.atomic import write_text_atomic
from medsight.models.checkpoint import library_versions
from medsight.models.predictor import predict_probabilities
from medsight.preprocess.contract import PreprocessContract
from medsight.synth.chest_ct import CLASSES, write_chest_ct_dataset


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
    arrays: CachedVolumes,
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
            display = preprocess_image(cases[i].image_path, display_contract)
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
        50, "--epochs", min=1, help="Maximum epochs (early stopping may end sooner)."
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
    prepared = prepare_with_progress(labels_csv, out, seed, list(CLASSES), replan=fresh)
    manifest, y, contract = prepared.cases, prepared.labels, prepared.plan.preprocess
    idx = {s: prepared.indices(s) for s in ("train", "val", "test")}
    # patience 20: on 60 validation cases the AUC swings by +-0.05 between epochs, and the
    # cosine schedule's late, small steps are where the model settles
    config = config_from_plan(
        prepared, model_name=model_name or None, max_epochs=epochs, seed=seed, patience=20
    )
    model_name = config.model_name
    fit = fit_with_progress(prepared, config, out, resume=False)
    arrays = prepared.volumes
    test = idx["test"]
    test_arrays = arrays.subset(test)
    probs = predict_probabilities(fit.model, test_arrays)
    metrics = classification_metrics(y[test], probs, list(CLASSES))
    metrics["split"] = "test"
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    gallery = _heatmap_gallery(
        fit.model, test_arrays, y[test], probs, [manifest[i] for i in test], contract
    )
    elapsed = time.perf_counter() - started
    versions = library_versions()
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
                **versions,
            },
            "generated_by": f"medsight {versions['medsight']}",
        },
    )
    _print_summary(metrics, elapsed, report)


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
