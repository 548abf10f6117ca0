"""Training an ehr-risk run: the run folder, the cache, resume, transfer and refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from medsight.ehr.tasks.risk_train import train_risk
from medsight.errors import InputError
from medsight.tasks.options import TrainOptions


def test_a_run_folder_holds_every_model_baseline_and_prediction(trained_run: Path) -> None:
    run = trained_run
    contract = json.loads((run / "model.json").read_text())
    assert contract["task"] == "ehr-risk" and contract["models"] == ["gru", "retain"]
    assert contract["model_name"] in {"gru", "retain"}
    assert contract["class_names"] == ["no event", "event"]
    for name in ("plan.json", "calibration.json", "codes.json", "history.csv", "train_config.json"):
        assert (run / name).is_file(), name
    for name in ("gru", "retain"):
        assert (run / "models" / f"{name}.safetensors").is_file()
        assert (run / "models" / name / "history.csv").is_file()
    primary = load_file(str(run / "model.safetensors"))
    chosen = load_file(str(run / "models" / f"{contract['model_name']}.safetensors"))
    assert primary.keys() == chosen.keys()
    assert all((primary[k] == chosen[k]).all() for k in primary)

    predictions = pq.read_table(run / "predictions.parquet")
    expected = {"subject_id", "prediction_time", "split", "label", "sex", "age_years"}
    assert expected | {"model", "kind", "score"} <= set(predictions.column_names)
    model_column = predictions.column("model").to_pylist()
    models = set(model_column)
    assert {"gru", "retain"} <= models
    assert all(model_column.count(m) == 120 for m in models)
    scores = predictions.column("score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert set(predictions.column("kind").to_pylist()) <= {"sequence", "baseline"}
    if "logistic" in models:  # the baselines ran beside the sequence models
        assert contract["baselines"] == ["logistic", "lightgbm"]
    calibration = json.loads((run / "calibration.json").read_text())
    assert 0 < calibration["threshold"] < 1


def test_the_synthetic_signal_is_learned(trained_run: Path) -> None:
    auc = json.loads((trained_run / "model.json").read_text())["tuning_auroc"]
    # rising HbA1c drives the outcome: even 2 epochs on 90 patients rank above chance
    assert max(auc[m] for m in ("gru", "retain")) > 0.6


def test_a_second_run_reuses_plan_and_cache_and_resume_finishes(
    tiny_cohort: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = tiny_cohort
    run = tmp_path / "run"
    options = TrainOptions(max_epochs=1, labels=str(labels))
    train_risk(data, run, options)
    first = load_file(str(run / "model.safetensors"))
    plan = json.loads((run / "plan.json").read_text())
    plan["notes"].append("edited by a person")
    (run / "plan.json").write_text(json.dumps(plan))
    capsys.readouterr()
    train_risk(data, run, TrainOptions(max_epochs=1, labels=str(labels), resume=True))
    assert "(from cache)" not in capsys.readouterr().out  # an edited plan re-encodes
    assert "edited by a person" in (run / "plan.json").read_text()
    again = load_file(str(run / "model.safetensors"))
    assert all((first[k] == again[k]).all() for k in first)  # resumed a finished run
    train_risk(data, run, TrainOptions(max_epochs=1, labels=str(labels)))
    assert "(from cache)" in capsys.readouterr().out
    train_risk(data, run, TrainOptions(max_epochs=1, labels=str(labels), replan=True))
    assert "edited by a person" not in (run / "plan.json").read_text()


def test_resume_after_an_interruption_ends_with_the_uninterrupted_weights(
    tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    data, labels = tiny_cohort
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_risk(data, whole, TrainOptions(max_epochs=2, labels=str(labels)))
    train_risk(data, cut, TrainOptions(max_epochs=2, labels=str(labels)))
    # rewind the cut run to its first epoch's state, as a kill after epoch 1 would leave it
    checkpoints = cut / "models" / "gru" / "checkpoints"
    state = json.loads((checkpoints / "last.json").read_text())
    shutil.rmtree(cut / "models" / "gru")
    train_risk(data, cut, TrainOptions(max_epochs=1, labels=str(labels)))
    saved = json.loads((checkpoints / "last.json").read_text())
    saved["config_json"] = state["config_json"]  # the 1-epoch run stands for epoch 1 of 2
    (checkpoints / "last.json").write_text(json.dumps(saved))
    train_risk(data, cut, TrainOptions(max_epochs=2, labels=str(labels), resume=True))
    a = load_file(str(whole / "model.safetensors"))
    b = load_file(str(cut / "model.safetensors"))
    assert all(np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-6) for k in a)


def test_init_weights_transfer_matching_tensors(
    trained_run: Path, tiny_cohort: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    data, labels = tiny_cohort
    run = tmp_path / "run"
    weights = trained_run / "models" / "gru.safetensors"
    train_risk(
        data,
        run,
        TrainOptions(max_epochs=1, labels=str(labels), model_name="gru", init_weights=weights),
    )
    said = "".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert f"--init{weights}:loaded" in said
    with pytest.raises(InputError, match="not a safetensors"):
        bad = tmp_path / "bad.safetensors"
        bad.write_text("nope")
        train_risk(data, tmp_path / "r2", TrainOptions(labels=str(labels), init_weights=bad))


def test_folds_train_subject_grouped_models(tiny_cohort: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = tiny_cohort
    run = tmp_path / "cv"
    train_risk(data, run, TrainOptions(max_epochs=1, labels=str(labels), folds=2))
    cv = json.loads((run / "cv_metrics.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [1, 2]
    assert cv["pooled_out_of_fold"]["auroc"] is not None
    fold_of = cv["fold_of_case"]
    by_subject: dict[str, set[int]] = {}
    for case, fold in fold_of.items():
        by_subject.setdefault(case.split("@")[0], set()).add(fold)
    assert all(len(f) == 1 for f in by_subject.values())
    assert json.loads((run / "ensemble.json").read_text())["members"] == ["fold_1", "fold_2"]
    assert (run / "fold_1" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (TrainOptions(), "needs --labels"),
        (TrainOptions(labels="x.parquet", classes=["a", "b"]), "--classes: not options"),
        (TrainOptions(labels="x.parquet", model_name="gru,gru"), "named twice"),
        (TrainOptions(labels="x.parquet", model_name="cnn"), "unknown EHR model 'cnn'"),
    ],
)
def test_bad_options_are_refused_with_one_line(
    tiny_cohort: tuple[Path, Path], tmp_path: Path, options: TrainOptions, message: str
) -> None:
    data, labels = tiny_cohort
    if options.labels:
        options = TrainOptions(
            labels=str(labels), classes=options.classes, model_name=options.model_name
        )
    with pytest.raises(InputError, match=message):
        train_risk(data, tmp_path / "run", options)
