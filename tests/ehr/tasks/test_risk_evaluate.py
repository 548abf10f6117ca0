"""`evaluate_risk_run` on a run folder written here (predictions + contract, no network)."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from medsight.ehr.tasks.risk_evaluate import evaluate_risk_run, useful_ranges
from medsight.errors import InputError
from medsight.tasks.options import EvaluateOptions

MODELS = {"gru": ("sequence", 1.6), "lstm": ("sequence", 1.0), "logistic": ("baseline", 1.0)}


def write_run(run: Path, n_subjects: int = 600, seed: int = 0, failing_old: bool = True) -> Path:
    """Three models' scores for 1-2 prediction times per subject; over-75s scored at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for subject in range(n_subjects):
        split = ("train", "tuning", "held_out")[subject % 3]
        sex = "F" if subject % 2 else "M"
        age = float(rng.uniform(40, 90))
        frailty = rng.normal()
        for k in range(1 + subject % 2):
            label = bool(frailty + rng.normal(0, 1) > 1.0)
            time = datetime(2020, 1, 1) + timedelta(days=200 * k)
            for name, (kind, strength) in MODELS.items():
                signal = strength * (label - 0.3) + rng.normal(0, 1)
                if failing_old and age >= 75:
                    signal = rng.normal(0, 1)
                score = 1 / (1 + np.exp(-(signal - 1.5)))
                rows.append((subject, time, split, label, sex, age, name, kind, score))
    frame = pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "subject_id",
            "prediction_time",
            "split",
            "label",
            "sex",
            "age_years",
            "model",
            "kind",
            "score",
        ],
    )
    run.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(run / "predictions.parquet")
    (run / "model.json").write_text(
        json.dumps(
            {
                "task": "ehr-risk",
                "model_name": "gru",
                "class_names": ["no event", "event"],
                "models": ["gru", "lstm"],
                "baselines": ["logistic"],
                "label_definition": "a major complication within 365 days of a visit",
            }
        )
    )
    return run


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("risk")
    run = write_run(root / "run")
    out = root / "out"
    evaluate_risk_run(run, EvaluateOptions(out=out, n_boot=200))
    return out, json.loads((out / "metrics.json").read_text())


def test_every_model_is_scored_on_the_same_held_out_patients(evaluated: tuple[Path, dict]) -> None:
    _, metrics = evaluated
    names = [m["name"] for m in metrics["models"]]
    assert names == ["gru", "lstm", "logistic"]
    assert metrics["held_out_alignment"]["same_patients"]
    n = {m["n_cases"] for m in metrics["models"]}
    assert len(n) == 1
    for m in metrics["models"]:
        for key in ("roc_auc", "pr_auc", "brier"):
            ci = m[key]
            assert ci["low"] <= ci["point"] <= ci["high"]
        for key in ("sensitivity", "specificity", "ppv", "npv"):
            assert m["operating_point"]["held_out"][key]["point"] is not None
        assert m["operating_point"]["tuning_threshold_matches"]
        assert m["calibration"]["ece_after"] < m["calibration"]["ece_before"]
        assert 0 <= m["conformal"]["referred_share"] <= 1
        assert len(m["decision_curve"]["thresholds"]) == len(m["decision_curve"]["ci"]["low"])
    gru = metrics["models"][0]
    assert gru["roc_auc"]["point"] > metrics["models"][2]["roc_auc"]["point"]


def test_best_models_are_chosen_on_tuning_and_compared_paired(evaluated: tuple[Path, dict]) -> None:
    _, metrics = evaluated
    tuning = {m["name"]: m["tuning"]["roc_auc"] for m in metrics["models"]}
    assert metrics["best_sequence_model"] == max(["gru", "lstm"], key=tuning.__getitem__)
    assert metrics["best_baseline"] == "logistic"
    diff = metrics["auroc_difference"]
    assert diff["sequence_model"] == metrics["best_sequence_model"]
    by_name = {m["name"]: m for m in metrics["models"]}
    expected = (
        by_name[diff["sequence_model"]]["roc_auc"]["point"]
        - by_name["logistic"]["roc_auc"]["point"]
    )
    assert diff["difference"]["point"] == pytest.approx(expected)
    assert diff["difference"]["low"] > 0  # gru's signal is 1.6x the baseline's


def test_a_failing_subgroup_is_flagged_not_hidden(evaluated: tuple[Path, dict]) -> None:
    out, metrics = evaluated
    flagged = {(f["model"], f["attribute"], f["group"]) for f in metrics["subgroups_below_overall"]}
    assert ("gru", "age", ">=75") in flagged
    assert not any(group in ("F", "M") for _, _, group in flagged)
    html = (out / "report.html").read_text()
    assert "Subgroups below the overall performance" in html
    assert "lies wholly below the overall AUROC" in html


def test_report_card_and_figures_are_written(evaluated: tuple[Path, dict]) -> None:
    out, metrics = evaluated
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    assert "a major complication within 365 days of a visit" in html
    assert "Decision curve" in html and "treat all" in html.lower()
    card = (out / "model_card.md").read_text()
    assert "# Model card: gru (EHR risk)" in card
    assert "| model | kind | tuning AUROC |" in card
    for name in ("roc", "pr", "decision_curve", "reliability_gru", "reliability_logistic"):
        assert (out / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert metrics["explanations"]["available"] is False
    assert (
        "encoded samples" in metrics["explanations"]["reason"]
        or "plan.json" in metrics["explanations"]["reason"]
    )
    # no subject identifier reaches the report
    assert "subject_id" not in html
    split_rows = {r["split"]: r for r in metrics["data_summary"]}
    assert split_rows["held_out"]["subjects"] == 200


def test_useful_ranges_text() -> None:
    curve = {
        "thresholds": [0.01, 0.02, 0.03, 0.04, 0.05],
        "useful": [False, True, True, False, True],
    }
    assert useful_ranges(curve) == "2%-3%, 5%"
    assert useful_ranges({"thresholds": [0.1], "useful": [False]}) == "none in the range shown"


def test_bad_runs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model.json: missing"):
        evaluate_risk_run(tmp_path, EvaluateOptions(out=tmp_path / "out"))
    run = write_run(tmp_path / "run", n_subjects=60)
    with pytest.raises(InputError, match="--data is not supported"):
        evaluate_risk_run(run, EvaluateOptions(out=tmp_path / "out", data=tmp_path))
    frame = pl.read_parquet(run / "predictions.parquet")
    scores = frame["score"].to_numpy().copy()
    scores[3] = 1.5
    frame = frame.with_columns(pl.Series("score", scores))
    frame.write_parquet(run / "predictions.parquet")
    with pytest.raises(InputError, match="row 4: score is not a probability"):
        evaluate_risk_run(run, EvaluateOptions(out=tmp_path / "out"))
    frame.drop("kind").write_parquet(run / "predictions.parquet")
    with pytest.raises(InputError, match="lacks column"):
        evaluate_risk_run(run, EvaluateOptions(out=tmp_path / "out"))


def test_an_outcome_the_conformal_sets_miss_is_flagged_not_averaged_away() -> None:
    from medsight.ehr.tasks.risk_evaluate import conformal_coverage_gaps

    def result(name: str, event: float | None) -> dict:
        return {
            "name": name,
            "conformal": {
                "target_coverage": 0.9,
                "coverage": 0.89,  # the average looks fine in both
                "per_class_coverage": {"no event": 1.0, "event": event},
            },
        }

    gaps = conformal_coverage_gaps([result("gru", 0.49), result("lightgbm", 0.85)])
    assert gaps == [{"model": "gru", "outcome": "event", "coverage": 0.49, "target": 0.9}]
    assert conformal_coverage_gaps([result("gru", None), {"name": "x", "conformal": {}}]) == []
