"""The whole EHR path on real records no one here wrote: the MIMIC-III demo, through the CLI.

import (mimic3) -> label (in-hospital death, predicted 48 h into each admission) -> train
(GRU + both baselines) -> evaluate -> explain one held-out subject -> predict a record.
87 subjects and 115 admissions are far too few for any metric claim: this shows the path runs
on a real layout, not how good the model is (the report's CIs span most of [0, 1]).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from medsight.cli.main import app

MIMIC3 = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ehr" / "mimic3demo"


def _run(*args: str) -> str:
    # in-process: no --quiet, which would stay set in the console state for later tests
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_mimic3_demo_in_hospital_mortality_end_to_end(tmp_path: Path) -> None:
    if not MIMIC3.is_dir():
        pytest.skip(f"no MIMIC-III demo at {MIMIC3}")
    meds, labels, run = tmp_path / "meds", tmp_path / "labels.parquet", tmp_path / "run"
    _run("ehr", "import", str(MIMIC3), "-o", str(meds), "--from", "mimic3")
    _run(
        "ehr", "label", str(meds), "--task", "in-hospital-death", "--at", "each-admission",
        "--hours-after", "48", "-o", str(labels),
    )  # fmt: skip
    _run(
        "train", str(meds), "--task", "ehr-risk", "--labels", str(labels), "-o", str(run),
        "--model", "gru", "--epochs", "3",
    )  # fmt: skip
    contract = json.loads((run / "model.json").read_text())
    assert contract["task"] == "ehr-risk"
    assert "death" in contract["label_definition"]

    out = _run("evaluate", str(run), "-o", str(run / "eval"))
    assert "held-out AUROC" in out
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    names = {m["name"] for m in metrics["models"]}
    assert names == {"gru", "logistic", "lightgbm"}
    held_out = next(s for s in metrics["data_summary"] if s["split"] == "held_out")
    assert held_out["subjects"] >= 5 and held_out["with event"] >= 1
    for model in metrics["models"]:
        low, high = model["roc_auc"]["low"], model["roc_auc"]["high"]
        assert 0.0 <= low <= model["roc_auc"]["point"] <= high <= 1.0
    assert (run / "eval" / "report.html").stat().st_size > 10_000

    predictions = pl.read_parquet(run / "predictions.parquet")
    subject = predictions.filter(pl.col("split") == "held_out")["subject_id"].min()
    _run("explain", str(run), str(subject), "-o", str(tmp_path / "why"))
    explanation = json.loads((tmp_path / "why" / "explanation.json").read_text())
    assert explanation["top_events"]
    # integrated gradients are complete: the contributions add up to the logit's change
    change = explanation["logit"] - explanation["baseline_logit"]
    assert explanation["sum_of_contributions"] == pytest.approx(change, abs=0.05)
    assert (tmp_path / "why" / "timeline.png").stat().st_size > 5_000
