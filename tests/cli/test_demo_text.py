"""The demo's clinical-text section: corpus, rule scores, classifier and discrepancy list."""

import json
from pathlib import Path

from medsight.cli import notes_cohorts
from medsight.cli.demo_text import text_section


def test_text_section_scores_the_rules_trains_a_classifier_and_lists_discrepancies(
    tmp_path: Path,
) -> None:
    cases = notes_cohorts.chest_ct_cases(40, 1)
    # an image model that sees no nodule anywhere: every reported nodule is a discrepancy
    predictions = {
        c["case_id"]: {"predicted": "normal", "probability": 0.8, "label": c["label"]}
        for c in cases[:20]
    }
    html = text_section(
        tmp_path / "text",
        cases,
        notes_cohorts.ehr_patients(20, 1),
        60,
        1,
        predictions,
        epochs=2,
    )
    metrics = json.loads((tmp_path / "text" / "text_metrics.json").read_text())
    assert metrics["corpus"]["counts"]["radiology"] == 40
    radiology = metrics["rules"]["radiology"]
    assert radiology["entities"]["exact"]["per_type"]["finding"]["f1"] > 0.9
    assert radiology["assertion"]["attributes"]["negation"]["values"]["negated"]["f1"] > 0.9
    assert metrics["labeller_agreement"]["n_reports"] == 40
    assert set(metrics["classifier"]["mean_macro_f1"]) == {"cnn", "tfidf-logistic"}
    crosscheck = metrics["crosscheck"]
    with_nodule = sum(c["label"] != "normal" for c in cases[:20])
    missed = [d for d in crosscheck["discrepancies"] if d["kind"] == "image missed the nodule"]
    assert crosscheck["summary"]["cases_compared"] == 20
    assert with_nodule - 2 <= len(missed) <= with_nodule
    assert all(d["report_right"] and not d["image_right"] for d in missed)
    for heading in ("Rule pipeline against the gold", "Report labeller", "feedback sentiment",
                    "discrepancy list", "image missed the nodule"):  # fmt: skip
        assert heading in html, heading
    # no note text in the section: the reports' sentences never appear in it
    reports = (tmp_path / "text" / "notes" / "radiology.jsonl").read_text().splitlines()
    first = json.loads(reports[0])["text"]
    assert max(first.split("\n"), key=len) not in html
