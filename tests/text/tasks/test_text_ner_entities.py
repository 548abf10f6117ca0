"""text-ner with --labels entities: the tagger's findings come back with the rule pipeline's
assertion context (a negated finding is marked negated), and evaluation sets the rules beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import medsight.text.tasks.ner  # noqa: F401  (registers text-ner)
from medsight.tasks import get_task
from medsight.tasks.options import EvaluateOptions, TrainOptions
from medsight.text.models.tagger_sizes import TaggerSizes
from medsight.text.tasks.ner_config import NerPlan, write_plan

FINDINGS = ["pleural effusion", "pneumothorax", "consolidation", "cardiomegaly"]
ANATOMY = ["right upper lobe", "left lower lobe", "right middle lobe"]


def _report(rng: np.random.Generator) -> tuple[str, list[dict[str, object]]]:
    parts: list[tuple[str, str | None]] = [("FINDINGS: ", None)]
    for _ in range(3):
        finding = str(rng.choice(FINDINGS))
        if rng.random() < 0.5:
            parts += [("No ", None), (finding, "finding"), (". ", None)]
        else:
            parts += [("There is ", None), (finding, "finding"), (" in the ", None)]
            parts += [(str(rng.choice(ANATOMY)), "anatomy"), (". ", None)]
    text, spans = "", []
    for piece, kind in parts:
        if kind:
            spans.append({"start": len(text), "end": len(text) + len(piece), "type": kind})
        text += piece
    return text, spans


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ent")
    rng = np.random.default_rng(1)
    with open(folder / "reports.jsonl", "w", encoding="utf-8") as f:
        for i in range(40):
            text, spans = _report(rng)
            f.write(json.dumps({"subject_id": i, "text": text, "entities": spans}) + "\n")
    small = TaggerSizes(word_dim=16, shape_dim=4, char_dim=8, char_filters=8, hidden_dim=32)
    write_plan(folder / "run" / "plan.json", NerPlan(sizes=small, batch_size=4, learning_rate=0.01))
    get_task("text-ner").train(folder / "reports.jsonl", folder / "run", TrainOptions(max_epochs=8))
    return folder / "run"


def test_findings_come_back_with_assertion_context(run: Path, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("FINDINGS: No pneumothorax. There is consolidation in the left lower lobe.\n")
    result = get_task("ner").load(run).predict(note, tmp_path / "out", False)
    found = {e.text: e for e in result.entities}
    assert found["pneumothorax"].type == "finding"
    assert found["pneumothorax"].negation == "negated"
    assert found["consolidation"].negation == "affirmed"
    assert found["left lower lobe"].type == "anatomy"
    assert "findings" in result.sections and found["consolidation"].section == "findings"


def test_evaluation_reports_the_rule_pipeline_on_the_same_notes(run: Path) -> None:
    get_task("ner").evaluate(run, EvaluateOptions(out=run / "eval", n_boot=50))
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"bilstm-crf", "rules"}
    model, rules = metrics["systems"]["bilstm-crf"], metrics["systems"]["rules"]
    assert model["exact"]["micro"]["n_gold"] == rules["exact"]["micro"]["n_gold"] > 0
    assert model["exact"]["micro"]["f1"]["point"] > 0.8
    assert "phi" not in model
