"""`medsight explain` and the explained evaluation on a real (tiny) trained ehr-risk run.

`trained_run` and `tiny_cohort` are the task tests' shared fixtures (conftest.py): a gru +
retain run on 120 subjects, trained once per session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from medsight.ehr.tasks.risk import RiskTask
from medsight.ehr.tasks.risk_explain import explain_risk
from medsight.errors import InputError
from medsight.tasks.options import EvaluateOptions, ExplainOptions

PNG = b"\x89PNG\r\n\x1a\n"


def held_out_subject(run: Path) -> int:
    table = pq.read_table(run / "predictions.parquet")
    held = table.filter(pc.equal(table.column("split"), "held_out"))
    return int(held.column("subject_id")[0].as_py())


def test_explaining_a_subject_writes_a_timeline_and_its_events(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "explained"
    subject = held_out_subject(trained_run)
    record = explain_risk(trained_run, Path(str(subject)), ExplainOptions(out=out))
    printed = capsys.readouterr().out
    assert str(out / "timeline.png") in printed and str(out / "explanation.json") in printed
    assert (out / "timeline.png").read_bytes().startswith(PNG)
    saved = json.loads((out / "explanation.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert 0 <= saved["risk"] <= 1 and 0 <= saved["calibrated_probability"] <= 1
    # completeness: the events' contributions add up to the logit minus the baseline logit
    assert saved["sum_of_contributions"] == pytest.approx(
        saved["logit"] - saved["baseline_logit"], abs=0.02
    )
    top = saved["top_events"]
    assert 0 < len(top) <= 10
    sizes = [abs(e["contribution"]) for e in top]
    assert sizes == sorted(sizes, reverse=True)
    assert all(e["days_before"] >= 0 for e in top)
    hba1c = [e for e in top if e["code"] == "LOINC//4548-4"]
    assert all(e["value"] is not None for e in hba1c)


def test_a_record_file_is_explained_with_the_risk_prediction_gives(
    trained_run: Path, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    shard = sorted((tiny_cohort[0] / "data" / "held_out").glob("*.parquet"))[0]
    events = pq.read_table(shard)
    subject = events.column("subject_id")[0]
    one = tmp_path / "one.parquet"
    pq.write_table(events.filter(pc.equal(events.column("subject_id"), subject)), one)
    record = explain_risk(trained_run, one, ExplainOptions(out=tmp_path / "out"))
    predicted = RiskTask().load(trained_run).predict(one, tmp_path, False)
    assert record["risk"] == pytest.approx(predicted.risk, abs=1e-5)
    assert record["source"] == "one.parquet"
    assert {c.code for c in predicted.contributions[:3]} <= {
        e["code"] for e in record["top_events"]
    }


def test_bad_requests_are_one_line_errors(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not among the run's labelled samples") as caught:
        explain_risk(trained_run, Path("987654321"), ExplainOptions(out=tmp_path))
    assert "987654321" not in str(caught.value)  # an identifier stays out of messages
    with pytest.raises(InputError, match="neither a file nor a subject_id"):
        explain_risk(trained_run, Path("no-such-file.json"), ExplainOptions(out=tmp_path))
    with pytest.raises(InputError, match="integrated gradients only"):
        explain_risk(trained_run, Path("1"), ExplainOptions(out=tmp_path, method="occlusion"))
    with pytest.raises(InputError, match="model.json: missing"):
        explain_risk(tmp_path, Path("1"), ExplainOptions(out=tmp_path))


def test_the_evaluation_of_a_trained_run_explains_its_primary_model(
    trained_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "evaluated"
    RiskTask().evaluate(trained_run, EvaluateOptions(out=out, n_boot=100))
    metrics = json.loads((out / "metrics.json").read_text())
    names = {m["name"] for m in metrics["models"]}
    assert {"gru", "retain", "logistic", "lightgbm"} <= names
    assert metrics["held_out_alignment"]["same_patients"]
    explanations = metrics["explanations"]
    assert explanations["available"], explanations.get("reason")
    codes = explanations["global_importance"]["codes"]
    assert codes and codes[0]["importance"] >= codes[-1]["importance"]
    assert any(c["code"] == "LOINC//4548-4" for c in codes)  # the planted signal
    assert metrics["example_timelines"]
    assert metrics["example_timelines"][0]["why"] == "highest risk"
    html = (out / "report.html").read_text()
    assert "Example timelines" in html and "Codes that matter most" in html
    assert (out / "figures" / "timeline_1.png").read_bytes().startswith(PNG)
    subjects = {
        str(s) for s in np.unique(pq.read_table(trained_run / "predictions.parquet")["subject_id"])
    }
    shown = html.split("Example timelines", 1)[1]
    assert not any(f"subject {s}" in shown for s in subjects)


@pytest.mark.slow
def test_cli_synth_label_train_evaluate_explain(tmp_path: Path) -> None:
    """A new user's path through the CLI, end to end (about a minute on two cores)."""

    def medsight(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "medsight", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    medsight("synth", "ehr", "data", "--patients", "1500", "--seed", "1")
    medsight(
        "ehr",
        "label",
        "data",
        "--task",
        "first-code",
        "--codes",
        "ICD10CM//E11.2,ICD10CM//E11.3,ICD10CM//I21,ICD10CM//I63,ICD10CM//Z89.4",
        "--at",
        "date:2024-01-01",
        "-o",
        "labels.parquet",
    )
    medsight(
        "train",
        "data",
        "--task",
        "ehr-risk",
        "--labels",
        "labels.parquet",
        "-o",
        "run",
        "--epochs",
        "1",
    )
    printed = medsight("evaluate", "run", "-o", "out", "--n-boot", "200")
    assert "held-out AUROC" in printed and "paired bootstrap" in printed
    for name in ("metrics.json", "report.html", "model_card.md", "figures/decision_curve.png"):
        assert (tmp_path / "out" / name).is_file(), name
    subject = held_out_subject(tmp_path / "run")
    printed = medsight("explain", "run", str(subject), "-o", "explained")
    assert "timeline.png" in printed
    assert (tmp_path / "explained" / "explanation.json").is_file()
