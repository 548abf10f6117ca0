"""`medsight demo`: the whole imaging pipeline on the embedded synthetic chest-CT data.

synth -> the same path as `medsight train` (patient split, plan, cache, fit) -> the same
path as `medsight evaluate` (CIs, calibration, operating point, subgroups, conformal
abstention, Grad-CAM gallery, model card, report.html). Then the same scans' lung and
nodule masks train a segmentation network (`medsight train --task segment` into
``RUN/segment``), evaluated like `medsight evaluate` (Dice/HD95/detection with CIs,
overlays); its section is added to ``report.html``. Last, the EHR part: a synthetic diabetes
cohort in MEDS (`medsight synth ehr`), complication labels (`medsight ehr label`), a GRU
beside logistic-regression and LightGBM baselines (`medsight train --task ehr-risk`), and
their side-by-side evaluation (`medsight evaluate`) as one more section (``RUN/ehr``).
Then clinical text (``RUN/text``, `demo_text`): synthetic reports for the same scans and notes
for the EHR patients, the rule pipeline and a sentiment classifier scored against their gold,
and the list of test cases where the image model and the report disagree.
This module only wires them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from medsight.console import STATE, console, progress_bar, say
from medsight.runs.atomic import write_text_atomic


def _ensure_data(data_dir: Path, cases: int, seed: int) -> tuple[Path, bool]:
    """Generate the dataset unless ``data_dir`` already holds the one asked for.

    Returns:
        The manifest path, and whether the data was (re)generated now.
    """
    from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

    marker = data_dir / "synth.json"
    wanted = {"generator": "chest-ct", "cases": cases, "seed": seed, "size": "small"}
    labels = data_dir / "labels.csv"
    complete = labels.is_file() and (data_dir / "labels.json").is_file()
    if marker.is_file() and json.loads(marker.read_text()) == wanted and complete:
        say(f"data: reusing {data_dir}")
        return labels, False
    with progress_bar() as progress:
        task = progress.add_task("generating synthetic chest CT", total=cases)
        write_chest_ct_dataset(
            data_dir, cases, seed, "small", on_case=lambda: progress.advance(task)
        )
    write_text_atomic(marker, json.dumps(wanted))
    return labels, True


def demo(
    out: Path = typer.Option(
        Path("runs/demo"), "--out", "-o", help="Run folder (data, cache, results)."
    ),
    cases: int = typer.Option(300, "--cases", min=20, help="Number of synthetic scans."),
    seed: int = typer.Option(0, "--seed", help="Seed for data, split and training."),
    model_name: str = typer.Option("", "--model", help="Registered model (default: the plan's)."),
    epochs: int = typer.Option(
        50, "--epochs", min=1, help="Maximum epochs (early stopping may end sooner)."
    ),
    segment_minutes: float = typer.Option(
        6.0, "--segment-minutes", min=0.0, help="Segmentation training budget (0: skip it)."
    ),
    ehr_patients: int = typer.Option(
        3000, "--ehr-patients", min=0, help="Synthetic EHR cohort size (0: skip the EHR part)."
    ),
    notes: int = typer.Option(
        300,
        "--notes",
        min=0,
        help="Synthetic discharge summaries and feedback comments beside one report per scan "
        "(0: skip the clinical-text part).",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Small version for tests: 60 cases, 3 epochs."
    ),
) -> None:
    """Generate data; train, evaluate and explain a lung-CT classifier, a lung + nodule
    segmentation network and a diabetes-complication risk model; write RUN/report.html."""
    from medsight.cli import notes_cohorts
    from medsight.cli.demo_text import test_split_predictions, text_section
    from medsight.imaging.synth.chest_ct import CLASSES
    from medsight.imaging.tasks.classify_evaluate import ReportSettings, print_headline, report_run
    from medsight.imaging.tasks.classify_setup import config_from_plan
    from medsight.imaging.tasks.classify_train import (
        DATASET_FILE,
        fit_with_progress,
        prepare_with_progress,
    )

    started = time.perf_counter()
    if quick:
        cases, epochs = min(cases, 60), min(epochs, 3)
        segment_minutes = min(segment_minutes, 0.2)
        ehr_patients = min(ehr_patients, 600)
        notes = min(notes, 60)
    out.mkdir(parents=True, exist_ok=True)
    labels_csv, fresh = _ensure_data(out / "data", cases, seed)
    prepared = prepare_with_progress(labels_csv, out, seed, list(CLASSES), replan=fresh)
    write_text_atomic(
        out / DATASET_FILE,
        json.dumps(
            {"manifest": str(labels_csv.resolve()), "classes": list(CLASSES), "seed": seed},
            indent=2,
        ),
    )
    # patience 20: on 60 validation cases the AUC swings by +-0.05 between epochs, and the
    # cosine schedule's late, small steps are where the model settles
    config = config_from_plan(
        prepared, model_name=model_name or None, max_epochs=epochs, seed=seed, patience=20
    )
    fit = fit_with_progress(prepared, config, out, resume=False)
    say("evaluating: bootstrap CIs, calibration, subgroups, conformal sets, Grad-CAM")
    contract = prepared.plan.preprocess
    summary = {
        "dataset": f"synthetic chest CT, {len(prepared.cases)} scans of "
        f"{len({c.patient_id for c in prepared.cases})} patients",
        "model": config.model_name,
        "input": f"{contract.shape} voxels at {contract.spacing_mm} mm",
        "epochs run (best)": f"{len(fit.history)} ({fit.best_epoch})",
        "training time": f"{fit.seconds / 60:.1f} min",
    }
    sections = []
    if segment_minutes > 0:
        sections.append(
            _segmentation(labels_csv.parent, out / "segment", seed, segment_minutes, fresh)
        )
        summary["segmentation"] = f"{out / 'segment'} (report: segment/eval/report.html)"
    if ehr_patients > 0:
        sections.append(_ehr(out / "ehr", ehr_patients, seed, epochs=3 if quick else 20))
        summary["EHR risk"] = f"{out / 'ehr'} (report: ehr/run/eval/report.html)"
    if notes > 0:
        sections.append(
            text_section(
                out / "text",
                notes_cohorts.chest_ct_cases(cases, seed),
                notes_cohorts.ehr_patients(notes, seed),
                notes,
                seed,
                test_split_predictions(out, prepared),
                epochs=3 if quick else 15,
            )
        )
        summary["clinical text"] = f"{out / 'text'} (numbers: text/text_metrics.json)"
    settings = ReportSettings(title="medsight demo: lung-CT nodule classification", seed=seed)
    evaluation = report_run(
        out, prepared, out, settings, history=fit.history, summary=summary, extra_sections=sections
    )
    _print_summary(evaluation)
    print_headline(evaluation)
    print(f"demo time {(time.perf_counter() - started) / 60:.1f} min")
    print(f"report: {out / 'report.html'}")


def _segmentation(data: Path, run: Path, seed: int, minutes: float, fresh: bool) -> str:
    """Train + evaluate the lung/nodule segmentation run; returns its report section."""
    from medsight.imaging.tasks.segment_evaluate import (
        evaluate_segment_run,
        print_segment_headline,
    )
    from medsight.imaging.tasks.segment_train import (
        fit_segment_with_progress,
        prepare_segment_with_progress,
    )

    say(f"segmentation: lungs + nodules, {minutes:g} min training budget")
    prepared = prepare_segment_with_progress(data, run, seed, "", replan=fresh, memory_gb=0.0)
    fit_segment_with_progress(
        prepared, run, resume=False, seed=seed, max_minutes=minutes, max_epochs=200
    )
    result, section = evaluate_segment_run(
        run,
        run / "eval",
        None,
        n_boot=1000,
        tolerance_mm=2.0,
        overlap=0.25,
        mirror=False,
        title="Segmentation: lungs and nodules (test split)",
    )
    print_segment_headline(result)
    return section


def _ehr(folder: Path, patients: int, seed: int, epochs: int) -> str:
    """Synthetic cohort -> labels -> GRU + baselines -> evaluation; returns its report section."""
    from medsight.cli.task_lookup import get_task
    from medsight.ehr.labels.label_spec import label_spec_from_options
    from medsight.ehr.labels.templates import write_labels
    from medsight.ehr.synth import OUTCOME_PREFIXES, OUTCOME_WINDOW_DAYS, PREDICTION_DATE
    from medsight.ehr.synth.formats import write_synthetic_ehr
    from medsight.ehr.tasks.risk_evaluate import evaluate_risk_run
    from medsight.tasks.options import EvaluateOptions, TrainOptions

    say(f"EHR: synthetic diabetes cohort of {patients} patients, complication risk")
    data, labels, run = folder / "cohort", folder / "labels.parquet", folder / "run"
    marker = folder / "synth.json"
    wanted = {"generator": "ehr-diabetes", "patients": patients, "seed": seed}
    fresh = not (marker.is_file() and json.loads(marker.read_text()) == wanted and data.is_dir())
    if fresh:
        write_synthetic_ehr(data, patients, seed, "meds")
        write_text_atomic(marker, json.dumps(wanted))
    spec = label_spec_from_options(
        "first-code",
        within_days=OUTCOME_WINDOW_DAYS,
        codes=list(OUTCOME_PREFIXES),
        at=f"date:{PREDICTION_DATE}",
        min_history_days=0,
        min_events=1,
    )
    counts = write_labels(data, spec, labels)
    say(f"labels: {counts['rows']} patients, {counts['positives']} with a complication")
    options = TrainOptions(
        model_name="gru", max_epochs=epochs, seed=seed, labels=str(labels), replan=fresh
    )
    get_task("ehr-risk").train(data, run, options)
    return evaluate_risk_run(
        run,
        EvaluateOptions(out=run / "eval"),
        section_title="Electronic health records: risk of a diabetes complication within a year",
    )


def _print_summary(evaluation: dict) -> None:
    if STATE.quiet:
        return
    from rich.table import Table

    ci = evaluation["with_ci"]
    table = Table(title="test split (95% CI by patient bootstrap)")
    for column in ("class", "sensitivity", "specificity", "PPV", "ROC-AUC", "n"):
        table.add_column(column, justify="right" if column != "class" else "left")

    def cell(v: dict) -> str:
        return "n/a" if v["point"] is None else f"{v['point']:.3f}"

    for name in ci["class_names"]:
        row = ci["per_class"][name]
        table.add_row(
            name,
            cell(row["sensitivity"]),
            cell(row["specificity"]),
            cell(row["ppv"]),
            cell(row["roc_auc"]),
            str(row["support"]),
        )
    console.print(table)
