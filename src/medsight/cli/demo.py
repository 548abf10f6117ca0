"""`medsight demo`: the whole pipeline on the embedded synthetic data, in a time budget.

synth -> the same path as `medsight train` (patient split, plan, cache, fit) -> the same
path as `medsight evaluate` (CIs, calibration, per-class decision rule, subgroups, conformal
abstention, Grad-CAM gallery, model card, report.html). Then the same scans' lung and
nodule masks train a segmentation network (`medsight train --task segment` into
``RUN/segment``), evaluated like `medsight evaluate` (Dice/HD95/detection with CIs,
overlays); its section is added to ``report.html``. Then the EHR part: a synthetic diabetes
cohort in MEDS (`medsight synth ehr`), complication labels (`medsight ehr label`), a GRU
beside logistic-regression and LightGBM baselines (`medsight train --task ehr-risk`), and
their side-by-side evaluation (`medsight evaluate`) as one more section (``RUN/ehr``).
Then clinical text (``RUN/text``, `demo_text`): synthetic reports for the same scans and notes
for the EHR patients, the rule pipeline and a sentiment classifier scored against their gold,
and the list of test cases where the image model and the report disagree.

The two training sections run fixed schedules planned up front from a throughput probe to
fit ``--minutes`` (`demo_plan`); each section's planned and actual time is printed at the end
and saved in ``RUN/demo_profile.json``. This module only wires them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from medsight.console import STATE, console, progress_bar, say

if TYPE_CHECKING:
    from medsight.cli.demo_plan import DemoBudget

#: the probe-less sections after each training section (what its plan must leave time for)
_AFTER_CLASSIFY = [
    "classification cache",
    "segmentation cache",
    "segmentation evaluation",
    "EHR",
    "clinical text",
    "classification evaluation",
    "report",
]
_AFTER_SEGMENT = ["segmentation evaluation", "EHR", "clinical text", "classification evaluation"]


def _ensure_data(data_dir: Path, cases: int, seed: int) -> tuple[Path, bool]:
    """Generate the dataset unless ``data_dir`` already holds the one asked for.

    Returns:
        The manifest path, and whether the data was (re)generated now.
    """
    from medsight.imaging.synth.chest_ct import write_chest_ct_dataset
    from medsight.runs.atomic import write_text_atomic

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
    minutes: float = typer.Option(
        10.0,
        "--minutes",
        min=1.0,
        help="Time budget of the whole demo: the training sections are planned to fit it "
        "on this machine (RUN/demo_plan.json).",
    ),
    model_name: str = typer.Option("", "--model", help="Registered model (default: the plan's)."),
    epochs: int = typer.Option(
        0, "--epochs", min=0, help="Classifier epochs (0: as many as the budget plan fits)."
    ),
    segment: bool = typer.Option(
        True, "--segment/--no-segment", help="Train and evaluate the segmentation network."
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
    replan: bool = typer.Option(
        False, "--replan", help="Probe and plan anew even if RUN/demo_plan.json exists."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Small version for tests: 60 cases, 3 epochs."
    ),
) -> None:
    """Generate data; train, evaluate and explain a lung-CT classifier, a lung + nodule
    segmentation network and a diabetes-complication risk model; read synthetic notes;
    write RUN/report.html, all planned to fit --minutes."""
    from medsight.cli import notes_cohorts
    from medsight.cli.demo_plan import DemoBudget, classification_chooser
    from medsight.cli.demo_text import test_split_predictions, text_section
    from medsight.imaging.synth.chest_ct import CLASSES
    from medsight.imaging.tasks.classify_evaluate import (
        ReportSettings,
        print_headline,
        report_run,
    )
    from medsight.imaging.tasks.classify_setup import config_from_plan
    from medsight.imaging.tasks.classify_train import (
        DATASET_FILE,
        fit_with_progress,
        prepare_with_progress,
    )
    from medsight.runs.atomic import write_text_atomic

    if quick:
        cases, epochs = min(cases, 60), min(epochs or 3, 3)
        ehr_patients = min(ehr_patients, 600)
        notes = min(notes, 60)
    out.mkdir(parents=True, exist_ok=True)
    identity = {
        **{"cases": cases, "seed": seed, "ehr_patients": ehr_patients, "notes": notes},
        **{"segment": segment, "quick": quick, "epochs": epochs, "model": model_name},
    }
    budget = DemoBudget(out, minutes, identity, replan)
    budget.section("synthetic chest CT")
    labels_csv, fresh = _ensure_data(out / "data", cases, seed)
    if fresh:
        budget.timed_synthesis(budget.elapsed(), cases)
    budget.section("classification: probe, plan, cache")
    chooser = classification_chooser(budget, len(CLASSES), _AFTER_CLASSIFY, epochs)
    prepared = prepare_with_progress(
        labels_csv, out, seed, list(CLASSES), replan=fresh or not budget.reused, choose=chooser
    )
    write_text_atomic(
        out / DATASET_FILE,
        json.dumps(
            {"manifest": str(labels_csv.resolve()), "classes": list(CLASSES), "seed": seed},
            indent=2,
        ),
    )
    planned = budget.plan.sections.get("classification", {})
    n_epochs = int(planned.get("epochs") or epochs or 3)
    # the fixed schedule runs to its end: the cosine decays over exactly these epochs,
    # patience never cuts it short, and no wall-clock cut-off decides the model
    config = config_from_plan(
        prepared,
        model_name=model_name or None,
        max_epochs=n_epochs,
        seed=seed,
        patience=n_epochs,
        max_minutes=24 * 60.0,
        keep_last=True,
        bf16=budget.plan.precision == "bf16",
    )
    budget.section(f"classification: training {n_epochs} epochs", planned.get("estimate_s"))
    fit = fit_with_progress(prepared, config, out, resume=False)
    contract = prepared.plan.preprocess
    summary = {
        "dataset": f"synthetic chest CT, {len(prepared.cases)} scans of "
        f"{len({c.patient_id for c in prepared.cases})} patients",
        "model": config.model_name,
        "input": f"{contract.shape} voxels at {contract.spacing_mm} mm",
        "epochs run (best)": f"{len(fit.history)} ({fit.best_epoch})",
        "training time": f"{fit.seconds / 60:.1f} min",
        "time plan": f"{budget.path.name}: {minutes:g} min on {budget.plan.cpu}",
    }
    sections = []
    if segment:
        sections.append(
            _segmentation(labels_csv.parent, out / "segment", seed, fresh, budget, quick)
        )
        summary["segmentation"] = f"{out / 'segment'} (report: segment/eval/report.html)"
    if ehr_patients > 0:
        budget.section("EHR: cohort, labels, GRU and baselines, evaluation")
        sections.append(_ehr(out / "ehr", ehr_patients, seed, epochs=3 if quick else 20))
        summary["EHR risk"] = f"{out / 'ehr'} (report: ehr/run/eval/report.html)"
    if notes > 0:
        budget.section("clinical text: notes, rules, classifier, discrepancies")
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
    budget.section("classification evaluation and report")
    settings = ReportSettings(title="medsight demo: lung-CT nodule classification", seed=seed)
    evaluation = report_run(
        out, prepared, out, settings, history=fit.history, summary=summary, extra_sections=sections
    )
    profile = _profile(budget)
    _print_summary(evaluation)
    print_headline(evaluation)
    _print_profile(profile)
    print(f"demo time {profile['total_s'] / 60:.1f} min (budget {minutes:g} min)")
    print(f"report: {out / 'report.html'}")


def _profile(budget: DemoBudget) -> dict[str, Any]:
    """Each section's actual and planned seconds, saved as ``RUN/demo_profile.json``."""
    from medsight.runs.atomic import write_text_atomic

    total = budget.elapsed()
    marks = list(budget.sections_seen.items())
    planned = {s: c.get("estimate_s") for s, c in budget.plan.sections.items()}
    rows = []
    for i, (name, start) in enumerate(marks):
        end = marks[i + 1][1] if i + 1 < len(marks) else total
        key = next((s for s in planned if name.startswith(f"{s}: training")), None)
        rows.append({"section": name, "seconds": round(end - start, 1),
                     "planned_training_s": planned.get(key) if key else None})  # fmt: skip
    profile = {"cpu": budget.plan.cpu, "budget_s": budget.seconds, "total_s": round(total, 1),
               "within_budget": total <= budget.seconds, "sections": rows}  # fmt: skip
    write_text_atomic(budget.path.parent / "demo_profile.json", json.dumps(profile, indent=2))
    return profile


def _print_profile(profile: dict[str, Any]) -> None:
    if STATE.quiet:
        return
    from rich.table import Table

    table = Table(title=f"time per section on {profile['cpu']}")
    for column in ("section", "seconds", "planned training s"):
        table.add_column(column, justify="left" if column == "section" else "right")
    for row in profile["sections"]:
        plan = row["planned_training_s"]
        table.add_row(
            row["section"], f"{row['seconds']:.0f}", "" if plan is None else f"{plan:.0f}"
        )
    console.print(table)


def _segmentation(
    data: Path, run: Path, seed: int, fresh: bool, budget: DemoBudget, quick: bool
) -> str:
    """Plan, train and evaluate the lung/nodule segmentation run; returns its report section."""
    from medsight.cli.demo_plan import plan_segmentation
    from medsight.imaging.tasks.segment_evaluate import (
        evaluate_segment_run,
        print_segment_headline,
    )
    from medsight.imaging.tasks.segment_train import (
        fit_segment_with_progress,
        prepare_segment_with_progress,
    )

    budget.section("segmentation: plan, cache")
    prepared = prepare_segment_with_progress(data, run, seed, "", replan=fresh, memory_gb=0.0)
    choice = plan_segmentation(
        budget, prepared, _AFTER_SEGMENT, epochs=1 if quick else 0, iterations=10 if quick else 0
    )
    epochs, iterations = int(choice["epochs"]), int(choice["iterations_per_epoch"])
    budget.section(f"segmentation: training {epochs} epochs", choice.get("estimate_s"))
    fit_segment_with_progress(
        prepared,
        run,
        resume=False,
        seed=seed,
        max_epochs=epochs,
        iterations_per_epoch=iterations,
        val_cases_per_epoch=int(choice.get("val_cases_per_epoch", 12)),
        patience=epochs,
        max_minutes=24 * 60.0,
    )
    budget.section("segmentation evaluation")
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
    from medsight.runs.atomic import write_text_atomic
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
    """Per class at the decision rule the run predicts with, beside the ranking AUC."""
    if STATE.quiet:
        return
    from rich.table import Table

    ci = evaluation["with_ci"]
    rule = evaluation["decision_rule"]["test"]["per_class"]
    table = Table(title="test split at the decision rule (95% CI by patient bootstrap)")
    for column in ("class", "sensitivity", "specificity", "PPV", "ROC-AUC", "n"):
        table.add_column(column, justify="right" if column != "class" else "left")

    def cell(v: dict) -> str:
        return "n/a" if v["point"] is None else f"{v['point']:.3f}"

    for name in ci["class_names"]:
        row = ci["per_class"][name]
        table.add_row(
            name,
            cell(rule[name]["sensitivity"]),
            cell(rule[name]["specificity"]),
            cell(rule[name]["ppv"]),
            cell(row["roc_auc"]),
            str(row["support"]),
        )
    console.print(table)
