"""The golden end-to-end test: DICOM on disk -> trained model, metrics, heatmaps, report."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    result = medsight("--quiet", "demo", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "macro AUC" in result.stdout and "report.html" in result.stdout
    assert "sensitivity at the decision rule: normal" in result.stdout
    return out


def test_demo_plans_to_its_budget_and_shows_every_class(run_dir: Path) -> None:
    plan = json.loads((run_dir / "demo_plan.json").read_text())
    assert plan["budget_minutes"] == 10 and plan["cpu"]
    classify = plan["sections"]["classification"]
    # the probe timed the classifier on this machine, and the plan says what it chose
    assert classify["probe"][0]["seconds_per_sample"] > 0 and classify["reason"]
    assert plan["sections"]["segmentation"]["probe"]["seconds_per_step"] > 0
    history = list(csv.DictReader((run_dir / "history.csv").read_text().splitlines()))
    assert len(history) == 3  # --quick: the fixed schedule ran to its end
    profile = json.loads((run_dir / "demo_profile.json").read_text())
    names = [row["section"] for row in profile["sections"]]
    assert names[0] == "synthetic chest CT" and any("segmentation" in n for n in names)
    assert abs(sum(row["seconds"] for row in profile["sections"]) - profile["total_s"]) < 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rule = metrics["decision_rule"]
    assert set(rule["test"]["per_class"]) == {"normal", "benign", "malignant"}
    assert (run_dir / "decision.json").is_file()
    report = (run_dir / "report.html").read_text()
    assert "Decision rule: every class" in report and "Sensitivity, benign" in report


def test_demo_writes_model_metrics_and_report(run_dir: Path) -> None:
    for name in (
        "model.safetensors",
        "model.json",
        "metrics.json",
        "report.html",
        "model_card.md",
        "predictions.csv",
        "plan.json",
        "splits.csv",
        "history.csv",
        "dataset.json",
        "checkpoints/last.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"accuracy", "macro_auc", "per_class", "confusion_matrix"} <= set(metrics)
    assert set(metrics["per_class"]) == {"normal", "benign", "malignant"}
    for row in metrics["per_class"].values():
        assert {"precision", "recall", "f1"} <= set(row)
    n_test = sum(
        1
        for r in csv.DictReader((run_dir / "splits.csv").read_text().splitlines())
        if r["split"] == "test"
    )
    assert sum(map(sum, metrics["confusion_matrix"])) == n_test
    contract = json.loads((run_dir / "model.json").read_text())
    assert contract["class_names"] == ["normal", "benign", "malignant"]
    assert contract["preprocess"]["spacing_mm"] and contract["versions"]["torch"]
    assert {"with_ci", "calibration", "operating_point", "subgroups", "conformal"} <= set(metrics)
    auc = metrics["with_ci"]["macro"]["roc_auc"]
    assert auc["low"] <= auc["point"] <= auc["high"]
    report = (run_dir / "report.html").read_text()
    # ROC, PR, confusion, reliability, curves and at least one heatmap
    assert report.count("data:image/png;base64,") >= 6
    for section in (
        "Data",
        "Operating point",
        "Calibration",
        "Subgroups",
        "conformal prediction sets",
        "Grad-CAM",
        "Model card",
        "Limitations",
        "Intended use",
    ):
        assert section in report, section
    card = (run_dir / "model_card.md").read_text()
    assert card.startswith("# Model card") and "## Subgroups" in card


def test_demo_adds_the_text_section_and_the_discrepancy_list(run_dir: Path) -> None:
    report = (run_dir / "report.html").read_text()
    assert "Clinical text: reports, notes and feedback" in report
    assert "Image model vs report: discrepancy list" in report
    metrics = json.loads((run_dir / "text" / "text_metrics.json").read_text())
    n_test = sum(
        1
        for r in csv.DictReader((run_dir / "splits.csv").read_text().splitlines())
        if r["split"] == "test"
    )
    # every test case's report was read and compared with the image model's call
    assert metrics["crosscheck"]["summary"]["cases_compared"] == n_test


def test_demo_segments_lungs_and_nodules_and_reports_them(run_dir: Path) -> None:
    segment = run_dir / "segment"
    contract = json.loads((segment / "model.json").read_text())
    assert contract["task"] == "segment"
    assert contract["class_names"] == ["background", "lung", "nodule"]
    metrics = json.loads((segment / "eval" / "metrics.json").read_text())
    lung = metrics["summary"]["per_class"]["lung"]["metrics"]["dice"]["mean"]
    assert lung["low"] <= lung["point"] <= lung["high"]
    assert metrics["summary"]["per_class"]["nodule"]["lesions"] is not None
    report = (run_dir / "report.html").read_text()
    # the segmentation section: metric table and reference-vs-prediction overlays
    assert "Segmentation: lungs and nodules" in report and "HD95" in report
    assert "reference outline, prediction fill" in report


def test_split_is_by_patient(run_dir: Path) -> None:
    rows = list(csv.DictReader((run_dir / "splits.csv").read_text().splitlines()))
    splits_of: dict[str, set[str]] = {}
    for r in rows:
        splits_of.setdefault(r["patient_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())


def test_predict_uses_only_the_run_folder(run_dir: Path, tmp_path: Path) -> None:
    run_copy = tmp_path / "only-run"
    run_copy.mkdir()
    for name in ("model.safetensors", "model.json", "conformal.json", "decision.json"):
        shutil.copy(run_dir / name, run_copy / name)
    series = run_dir / "data" / "series" / "case_0001"
    result = medsight("predict", str(run_copy), str(series), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer["probabilities"]) == {"normal", "benign", "malignant"}
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4
    assert answer["predicted"] in answer["probabilities"]
    # the class is called with the run's per-class decision weights, not the plain argmax
    rule = json.loads((run_copy / "decision.json").read_text())
    weighted = {
        n: answer["probabilities"][n] * w
        for n, w in zip(rule["class_names"], rule["weights"], strict=True)
    }
    assert answer["predicted"] == max(weighted, key=weighted.get)
    assert set(answer["conformal_set"]) <= set(answer["probabilities"])
    assert answer["refer"] == (len(answer["conformal_set"]) != 1)


def test_predict_batches_a_manifest_and_writes_heatmaps(run_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "batch.csv"
    series = sorted((run_dir / "data" / "series").iterdir())[:3]
    manifest.write_text("path,label\n" + "".join(f"{p},normal\n" for p in series))
    result = medsight(
        "predict", str(run_dir), str(manifest), "--json", "--heatmap", str(tmp_path / "h")
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["input"] for a in answers] == [str(p) for p in series]
    assert all(Path(a["heatmap"]).is_file() for a in answers)


def test_second_run_reuses_data_cache_and_plan_and_trains_the_same_model(run_dir: Path) -> None:
    weights = (run_dir / "model.safetensors").read_bytes()
    plan = (run_dir / "demo_plan.json").read_text()
    result = medsight("demo", "--quick", "--out", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "reusing" in result.stdout and "(60 from cache)" in result.stdout
    assert "plan: reusing" in result.stdout
    # the saved plan, the same seed, the same machine: the same model
    assert (
        json.loads((run_dir / "demo_plan.json").read_text())["sections"]["classification"]
        == json.loads(plan)["sections"]["classification"]
    )
    assert (run_dir / "model.safetensors").read_bytes() == weights


def test_evaluate_rewrites_the_report_from_the_run_alone(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = medsight(
        "evaluate", str(run_dir), "-o", str(out), "--n-boot", "200", "--sensitivity", "0.9"
    )
    assert result.returncode == 0, result.stderr
    assert "macro AUC" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["operating_point"]["method"] == "target sensitivity"
    assert metrics["with_ci"]["n_boot"] == 200
    assert (out / "report.html").is_file() and (out / "model_card.md").is_file()


@pytest.mark.parametrize("case", ["missing", "not-dicom", "empty", "two-series", "mixed-sizes"])
def test_predict_bad_input_is_one_clear_line(run_dir: Path, tmp_path: Path, case: str) -> None:
    import numpy as np
    import pydicom

    series = run_dir / "data" / "series"
    target = tmp_path / case
    if case == "not-dicom":
        target.write_bytes(b"\x00garbage" * 100)
    elif case == "empty":
        target.mkdir()
    elif case == "two-series":
        shutil.copytree(series / "case_0001", target / "a")
        shutil.copytree(series / "case_0002", target / "b")
    elif case == "mixed-sizes":
        shutil.copytree(series / "case_0001", target)
        victim = sorted(target.glob("*.dcm"))[0]
        ds = pydicom.dcmread(victim)
        ds.Rows = ds.Columns = 32
        ds.PixelData = np.zeros((32, 32), np.int16).tobytes()
        ds.save_as(victim)
    result = medsight("predict", str(run_dir), str(target))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(target) in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_train_with_folds_ensembles_the_fold_models(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    labels = run_dir / "data" / "labels.csv"
    result = medsight(
        "--quiet", "train", str(labels), "-o", str(out), "--folds", "2", "--epochs", "1"
    )
    assert result.returncode == 0, result.stderr
    cv = json.loads((out / "cv_metrics.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [1, 2]
    assert "macro_auc" in cv["pooled_out_of_fold"]
    assert json.loads((out / "ensemble.json").read_text())["members"] == ["fold_1", "fold_2"]
    series = run_dir / "data" / "series" / "case_0001"
    answer = json.loads(medsight("predict", str(out), str(series), "--json").stdout)
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4
