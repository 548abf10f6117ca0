"""The demo's clinical-text part: one more section of ``report.html`` (``RUN/text``).

1. `medsight synth notes` for the demo's chest-CT cohort (one report per scan, the same case
   ids) and the first patients of the EHR cohort, with gold annotations (``RUN/text/notes``);
2. the rule pipeline on the reports and discharge summaries, scored against the gold:
   entity P/R/F1 and assertion F1 per value (`medsight.text.evaluate`), and the report
   labeller's agreement per finding with the gold report labels;
3. a document classifier (`text-classify`, a small CNN) trained on the feedback comments'
   sentiment beside its TF-IDF + logistic baseline, evaluated on the held-out patients
   (``RUN/text/classify``);
4. the image-vs-report discrepancy list: each test-split case's report read by the rule
   pipeline against the image model's prediction for the same case.

Wiring only: every step is the same code as its CLI verb. Numbers go to
``RUN/text/text_metrics.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from medsight.console import say
from medsight.runs.atomic import write_text_atomic

#: entity types the synthetic gold annotates, per note kind
SCORED_TYPES = {
    "radiology": ("finding", "measurement", "device", "anatomy", "procedure"),
    "discharge": ("finding", "medication", "procedure"),
}


def test_split_predictions(run_dir: Path, prepared: Any) -> dict[str, dict[str, Any]]:
    """The classification run's test-split answers: case -> predicted, probability, label."""
    from medsight.imaging.inference.predictor import Predictor

    rows = prepared.indices("test")
    if len(rows) == 0:
        return {}
    predictor = Predictor(run_dir)
    probs = predictor.predict_array(prepared.volumes.subset(rows))
    names = predictor.class_names
    answers = {}
    for row, p in zip(rows, probs, strict=True):
        case = prepared.cases[int(row)]
        best = int(p.argmax())
        answers[case.case_id] = {
            "predicted": names[best],
            "probability": float(p[best]),
            "label": prepared.class_names[int(prepared.labels[int(row)])],
        }
    return answers


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rule_scores(notes_dir: Path, pipeline: Any) -> tuple[dict[str, Any], dict[str, Any], list]:
    """Entity and assertion scores per note kind; the analysed reports (for the crosscheck)."""
    from medsight.text.evaluate.assertion_scores import assertion_scores
    from medsight.text.evaluate.entity_scores import entity_scores
    from medsight.text.io.note import Note

    scores: dict[str, Any] = {}
    records: dict[str, Any] = {}
    analysed_reports: list = []
    for kind, types in SCORED_TYPES.items():
        rows = _jsonl(notes_dir / f"{kind}.jsonl")
        records[kind] = rows
        if not rows:
            continue
        started = time.perf_counter()
        analysed = list(pipeline.pipe(Note(r["note_id"], r["text"]) for r in rows))
        seconds = time.perf_counter() - started
        if kind == "radiology":
            analysed_reports = analysed
        gold = {r["note_id"]: r["entities"] for r in rows}
        predicted = {a.note_id: [e.to_json() for e in a.entities] for a in analysed}
        scores[kind] = {
            "notes": len(rows),
            "notes_per_second": len(rows) / seconds if seconds > 0 else None,
            "entities": entity_scores(gold, predicted, types),
            "assertion": assertion_scores(gold, predicted, types=["finding"]),
        }
    return scores, records, analysed_reports


def _labeller_agreement(reports: list[dict], analysed: list, seed: int) -> dict[str, Any] | None:
    from medsight.text.evaluate.agreement_per_finding import agreement_per_finding
    from medsight.text.labeller.report_labels import label_report
    from medsight.text.synth.chest_ct_reports import REPORT_FINDINGS

    if not reports:
        return None
    ours = {a.note_id: label_report(a, REPORT_FINDINGS) for a in analysed}
    gold = {r["note_id"]: r["findings"] for r in reports}
    groups = {r["note_id"]: r["subject_id"] for r in reports}
    return agreement_per_finding(ours, gold, REPORT_FINDINGS, groups, n_boot=200, seed=seed)


def _classifier(notes_dir: Path, run: Path, seed: int, epochs: int) -> dict[str, Any] | None:
    """text-classify on the feedback comments' sentiment (CNN + TF-IDF baseline)."""
    from medsight.cli.task_lookup import get_task
    from medsight.tasks.options import TrainOptions
    from medsight.text.tasks.classify_evaluate import evaluate_text_classify

    data = notes_dir / "feedback.jsonl"
    if len(_jsonl(data)) < 30:
        return None
    options = TrainOptions(
        model_name="cnn",
        max_epochs=epochs,
        seed=seed,
        labels="sentiment",
        max_minutes=1.0,
        replan=True,
    )
    started = time.perf_counter()
    get_task("text-classify").train(data, run, options)
    from medsight.tasks.options import EvaluateOptions

    metrics = evaluate_text_classify(run, EvaluateOptions(out=run / "eval", n_boot=200))
    metrics["seconds"] = time.perf_counter() - started
    return metrics


def text_section(
    folder: Path,
    cases: list[dict[str, Any]],
    patients: list[dict[str, Any]],
    notes: int,
    seed: int,
    image_predictions: dict[str, dict[str, Any]],
    epochs: int,
) -> str:
    """Run the text part into ``folder`` and return its report section (HTML).

    Args:
        folder: ``RUN/text``.
        cases: the demo's chest-CT cases (`notes_cohorts.chest_ct_cases`): one report each.
        patients: EHR patients for the discharge summaries (`notes_cohorts.ehr_patients`).
        notes: discharge summaries and feedback comments to write.
        seed: the demo's seed.
        image_predictions: the image model's test-split answers (`test_split_predictions`).
        epochs: the classifier's maximum epochs.
    """
    from medsight.evaluate.report.html_report import render_page
    from medsight.text.crosscheck.discrepancies import find_discrepancies
    from medsight.text.crosscheck.discrepancy_section import discrepancy_section_html
    from medsight.text.crosscheck.report_finding import nodule_finding
    from medsight.text.pipeline.analyze import default_pipeline
    from medsight.text.synth.notes_corpus import write_notes_corpus

    started = time.perf_counter()
    say(f"text: synthetic notes ({len(cases)} chest-CT reports, {notes} discharge summaries, "
        f"{notes} feedback comments) with gold annotations")  # fmt: skip
    notes_dir = folder / "notes"
    manifest = write_notes_corpus(
        notes_dir, seed, cases=cases, patients=patients, discharge=notes, feedback=notes
    )
    say("text: rule pipeline (sections, entities, ConText) against the gold")
    pipeline = default_pipeline()
    rules, records, analysed = _rule_scores(notes_dir, pipeline)
    agreement = _labeller_agreement(records["radiology"], analysed, seed)
    say("text: sentiment classifier (CNN) beside its TF-IDF + logistic baseline")
    classifier = _classifier(notes_dir, folder / "classify", seed, epochs)
    by_id = {r["note_id"]: r for r in records["radiology"]}
    findings = [
        nodule_finding(by_id[a.note_id]["text"], a, by_id[a.note_id]["case_id"])
        for a in analysed
        if by_id[a.note_id]["case_id"] in image_predictions
    ]
    discrepancies, crosscheck = find_discrepancies(findings, image_predictions)
    seconds = time.perf_counter() - started
    metrics = {
        "corpus": manifest,
        "rules": rules,
        "labeller_agreement": agreement,
        "classifier": classifier,
        "crosscheck": {
            "summary": crosscheck,
            "discrepancies": [d.to_json() for d in discrepancies],
        },
        "seconds": seconds,
    }
    write_text_atomic(folder / "text_metrics.json", json.dumps(metrics, indent=2) + "\n")
    _print_headline(rules, classifier, crosscheck, seconds)
    return render_page(
        "text_section.html.j2",
        {
            "section_title": "Clinical text: reports, notes and feedback",
            "corpus": manifest,
            "rules": rules,
            "agreement": agreement,
            "classifier": classifier,
            "crosscheck_html": discrepancy_section_html(discrepancies, crosscheck),
            "seconds": seconds,
        },
    )


def _f1(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_headline(
    rules: dict[str, Any],
    classifier: dict[str, Any] | None,
    crosscheck: dict[str, Any],
    seconds: float,
) -> None:
    for kind, score in rules.items():
        micro = score["entities"]["exact"]["micro"]["f1"]
        negation = score["assertion"]["attributes"]["negation"]["macro_f1"]
        print(
            f"text {kind}: entity F1 {_f1(micro)} (exact, {', '.join(SCORED_TYPES[kind])}), "
            f"negation macro-F1 {_f1(negation)} on {score['notes']} synthetic notes"
        )
    if classifier is not None:
        for model, mean in classifier["mean_macro_f1"].items():
            print(f"text sentiment {model}: macro-F1 {_f1(mean['point'])} (test split)")
    print(
        f"text crosscheck: {crosscheck['discrepancies']} image-vs-report discrepancies in "
        f"{crosscheck['cases_compared']} test cases; text part {seconds:.0f} s"
    )
