"""text-classify end to end on an easy synthetic set: learnable, multi-output, resumable,
transferable, predicted, explained, exported and evaluated (also on an external set)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from medsight.errors import InputError
from medsight.tasks.options import EvaluateOptions, ExplainOptions, PredictOptions, TrainOptions
from medsight.tasks.results import parse_result
from medsight.text.tasks.classify import TextClassifyTask
from medsight.text.tasks.classify_data import load_classify_data
from medsight.text.tasks.classify_plan import make_plan, write_plan

CUES = {
    "positive": ["kind", "helpful", "caring"],
    "negative": ["rude", "slow", "dirty"],
    "neutral": ["average", "usual", "ordinary"],
}
EFFUSION = {
    "present": "There is a pleural effusion.",
    "absent": "No pleural effusion.",
    "not mentioned": "Lungs are clear.",
}
FILLER = ["the", "ward", "visit", "was", "today", "and", "staff", "room", "stay", "my"]
TASK = TextClassifyTask()
#: small networks, few epochs: each fit takes a second or two
OPTIONS = TrainOptions(model_name="cnn", max_epochs=12, batch_size=16, learning_rate=1e-2)


def write_notes(path: Path, n: int = 180, seed: int = 0) -> Path:
    """``n`` notes of ``n // 2`` patients; sentiment and effusion each follow cue phrases."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            sentiment = ["positive", "negative", "neutral"][i % 3]
            effusion = ["present", "absent", "not mentioned"][(i // 3) % 3]
            words = list(rng.choice(FILLER, 6)) + [str(rng.choice(CUES[sentiment]))]
            rng.shuffle(words)
            row = {
                "note_id": f"n{i}",
                "subject_id": f"p{i // 2}",
                "time": "2100-01-01",
                "text": " ".join(words) + ". " + EFFUSION[effusion],
                "sentiment": sentiment,
                "finding:pleural_effusion": effusion,
            }
            f.write(json.dumps(row) + "\n")
    return path


def train(data: Path, run: Path, options: TrainOptions) -> None:
    """Plan with small networks, then train (a second or two per fit)."""
    plan = make_plan(load_classify_data(data, options.labels, options.seed), options.labels)
    small = plan.model_copy(update={"embed_dim": 16, "hidden_dim": 16, "layers": 1, "heads": 2})
    run.mkdir(parents=True, exist_ok=True)
    write_plan(run / "plan.json", small)
    TASK.train(data, run, options)


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_notes(tmp_path_factory.mktemp("notes") / "notes.jsonl")


@pytest.fixture(scope="module")
def run(notes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    train(notes, out, replace(OPTIONS, labels="sentiment,finding:pleural_effusion"))
    return out


@pytest.fixture(scope="module")
def evaluated(run: Path) -> dict:
    TASK.evaluate(run, EvaluateOptions(out=run / "eval", n_boot=100))
    return json.loads((run / "eval" / "metrics.json").read_text())


def test_deep_model_and_baseline_learn_both_outputs(evaluated: dict) -> None:
    for model in ("cnn", "tfidf-logistic"):
        for output in ("sentiment", "finding:pleural_effusion"):
            # chance is 1/3 for three balanced classes
            assert evaluated["outputs"][model][output]["macro_f1"]["point"] > 0.8, (model, output)
    assert evaluated["primary_model"] == "cnn" and evaluated["baseline"] == "tfidf-logistic"


def test_report_shows_every_class_with_intervals(evaluated: dict, run: Path) -> None:
    per_class = evaluated["outputs"]["cnn"]["sentiment"]["per_class"]
    assert set(per_class) == {"negative", "neutral", "positive"}
    assert all(c["f1"]["low"] is not None for c in per_class.values())
    page = (run / "eval" / "report.html").read_text()
    assert "finding:pleural_effusion" in page and "tfidf-logistic" in page
    assert (run / "eval" / "model_card.md").is_file()
    assert "ece_after" in evaluated["outputs"]["cnn"]["sentiment"]["calibration"]
    for mean in evaluated["mean_macro_f1"].values():  # resamples losing a class are skipped,
        assert mean["low"] <= mean["point"]  # so the interval is not pushed above the point


def test_no_patient_has_notes_in_two_splits(run: Path) -> None:
    table = pq.read_table(run / "predictions.parquet").to_pylist()
    splits: dict[str, set[str]] = {}
    for row in table:
        splits.setdefault(row["subject_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"train", "tuning", "test"}


def test_loaded_run_predicts_every_output_and_copies_the_note(run: Path, tmp_path: Path) -> None:
    note = tmp_path / "in.txt"
    note.write_text("my visit was kind and helpful today. There is a pleural effusion.")
    loaded = TASK.load(run)
    assert loaded.is_2d()
    result = loaded.predict(note, tmp_path / "out", False)
    assert result.labels["sentiment"].label == "positive"
    assert result.labels["finding:pleural_effusion"].label == "present"
    assert (tmp_path / "out" / "note.txt").read_text() == note.read_text()
    assert result.files == ["note.txt"]
    # the rule pipeline's entities come with their context
    effusion = [e for e in result.entities if e.concept == "pleural_effusion"]
    assert effusion and effusion[0].negation == "affirmed"
    assert parse_result(json.loads(json.dumps(result.to_json()))) == result


def test_predict_prints_json(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    note = tmp_path / "in.txt"
    note.write_text("the staff were rude. No pleural effusion.")
    TASK.predict(run, [note], PredictOptions(as_json=True))
    record = json.loads(capsys.readouterr().out)
    assert record["labels"]["sentiment"]["label"] == "negative"


def test_empty_note_is_refused(run: Path, tmp_path: Path) -> None:
    note = tmp_path / "empty.txt"
    note.write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        TASK.load(run).predict(note, tmp_path / "out", False)


def test_explanation_credits_the_cue_word(run: Path, tmp_path: Path) -> None:
    note = tmp_path / "in.txt"
    note.write_text("the ward was dirty today")
    TASK.explain(run, note, ExplainOptions(out=tmp_path / "why", class_name="sentiment"))
    record = json.loads((tmp_path / "why" / "explanation.json").read_text())["outputs"][0]
    assert record["label"] == "negative"
    text = note.read_text()
    best = max(record["tokens"], key=lambda t: t["score"])
    assert text[best["start"] : best["end"]] == "dirty"
    assert abs(record["completeness_gap"]) < 0.1  # integrated gradients add up
    assert "<span" in (tmp_path / "why" / "explanation.html").read_text()


def test_onnx_export_predicts_as_the_run(run: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = TASK.export(run)
    loaded = TASK.load(run)
    ids = loaded.token_ids("my stay was caring. Lungs are clear.")
    logits = ort.InferenceSession(str(path)).run(None, {"input_ids": ids.numpy()})[0]
    assert np.allclose(logits, loaded.model(ids).detach().numpy(), atol=1e-4)


def test_external_set_is_scored_on_the_outputs_it_has(run: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in write_notes(tmp_path / "x.jsonl", 60, 5).open()]
    for row in rows:
        del row["finding:pleural_effusion"]
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    TASK.evaluate(run, EvaluateOptions(out=tmp_path / "ext", data=tmp_path / "x.jsonl", n_boot=50))
    metrics = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    assert set(metrics["outputs"]["cnn"]) == {"sentiment"}
    assert any("finding:pleural_effusion" in n for n in metrics["notes"])
    assert metrics["outputs"]["cnn"]["sentiment"]["macro_f1"]["point"] > 0.8


def test_resume_after_an_interruption_ends_with_the_uninterrupted_weights(
    notes: Path, tmp_path: Path
) -> None:
    options = replace(OPTIONS, labels="sentiment", max_epochs=2)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(notes, whole, options)
    train(notes, cut, options)
    # rewind the cut run to its first epoch's state, as a kill after epoch 1 would leave it
    checkpoints = cut / "models" / "cnn" / "checkpoints"
    state = json.loads((checkpoints / "last.json").read_text())
    shutil.rmtree(cut / "models" / "cnn")
    train(notes, cut, replace(options, max_epochs=1))
    saved = json.loads((checkpoints / "last.json").read_text())
    saved["config_json"] = state["config_json"]  # the 1-epoch run stands for epoch 1 of 2
    (checkpoints / "last.json").write_text(json.dumps(saved))
    TASK.train(notes, cut, replace(options, resume=True))
    assert len((cut / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert (cut / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()


def test_resume_without_an_earlier_run_is_refused(notes: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to resume"):
        TASK.train(notes, tmp_path / "none", replace(OPTIONS, resume=True))


def test_init_reuses_the_donor_tokenizer_and_encoder(
    run: Path, notes: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    options = replace(OPTIONS, labels="sentiment", max_epochs=1, init_weights=run)
    train(notes, tmp_path / "new", options)
    assert (tmp_path / "new" / "tokenizer.json").read_text() == (run / "tokenizer.json").read_text()
    said = capsys.readouterr().out.replace("\n", "")
    assert "--init" in said and "loaded" in said and "reusing" in said
    assert "heads.0" not in said  # the sentiment head matched the donor's first head


def test_init_from_a_hugging_face_folder_needs_the_extra(notes: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    # without the transformers extra: says to install it; with it: not supported yet
    with pytest.raises(InputError, match="Hugging Face"):
        TASK.train(notes, tmp_path / "r", replace(OPTIONS, init_weights=folder))


def test_other_tasks_options_are_refused(notes: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--folds: not options of --task text-classify"):
        TASK.train(notes, tmp_path / "r", replace(OPTIONS, folds=3))
