"""text-ner end to end on planted PHI: it learns, reports beside the rules, predicts, explains,
exports and resumes; nothing from a note reaches its report files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from ner_planted_phi import FIRST, LAST, write_planted_phi
from safetensors.torch import load_file

import medsight.text.tasks.ner  # noqa: F401  (registers text-ner)
from medsight.errors import InputError
from medsight.tasks import get_task
from medsight.tasks.options import EvaluateOptions, ExplainOptions, TrainOptions
from medsight.tasks.results import parse_result
from medsight.text.models.tagger_sizes import TaggerSizes
from medsight.text.tasks import ner_train
from medsight.text.tasks.ner_config import NerPlan, write_plan
from medsight.text.tasks.ner_weights import load_tagger

SMALL = NerPlan(
    sizes=TaggerSizes(word_dim=16, shape_dim=8, char_dim=12, char_filters=16, hidden_dim=32),
    batch_size=4,
    learning_rate=0.01,
)
OPTIONS = TrainOptions(max_epochs=10, labels="phi", seed=0)


def _train(data: Path, run: Path, options: TrainOptions = OPTIONS) -> Path:
    write_plan(run / "plan.json", SMALL)
    get_task("ner").train(data, run, options)
    return run


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planted_phi(tmp_path_factory.mktemp("phi") / "phi.jsonl", n=60, seed=0)


@pytest.fixture(scope="module")
def trained(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(planted, tmp_path_factory.mktemp("run") / "run")


@pytest.fixture()
def note(tmp_path: Path) -> Path:
    text = "Dr. Okafor reviewed the case. Patient Greta Novak was seen on 11/02/2103. MRN 7654321."
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_learns_planted_phi_and_reports_it_beside_the_rules(trained: Path) -> None:
    contract = json.loads((trained / "model.json").read_text())
    assert contract["task"] == "text-ner" and contract["class_names"] == [
        "DATE", "ID", "NAME", "PHONE"
    ]  # fmt: skip
    # names are never in the vocabulary: the tagger reads them by shape, spelling and context
    words = json.loads((trained / "vocabulary.json").read_text())["words"]
    assert not {w.lower() for w in FIRST + LAST} & set(words)
    # separators are not identifying: they keep their entries; numbers never have one
    assert {"/", "-"} <= set(words) and not any(w.isdigit() for w in words)
    get_task("text-ner").evaluate(trained, EvaluateOptions(out=trained / "eval", n_boot=50))
    metrics = json.loads((trained / "eval" / "metrics.json").read_text())
    model = metrics["systems"]["bilstm-crf"]
    assert metrics["unknown_word_share"] < 0.3  # in-domain notes: no out-of-domain warning
    assert model["exact"]["micro"]["f1"]["point"] > 0.8  # chance is ~0 for exact spans
    assert model["phi"]["recall"] > 0.8 and model["phi"]["leaked"] <= 3
    ci = model["exact"]["micro"]["f1"]
    assert ci["low"] <= ci["point"] <= ci["high"]
    assert set(model["exact"]["per_type"]) == {"DATE", "ID", "NAME", "PHONE"}
    if "rules" in metrics["systems"]:  # the rule de-identifier on the same notes
        assert metrics["systems"]["rules"]["phi"]["n_gold"] == model["phi"]["n_gold"]
    report = (trained / "eval" / "report.html").read_text()
    card = (trained / "eval" / "model_card.md").read_text()
    assert "leaked gold strings" in report and "Model card" in card
    for name in LAST:  # no note text in any report file
        assert name not in report and name not in card
        assert name not in (trained / "eval" / "metrics.json").read_text()


def test_service_predict_writes_the_note_and_finds_unseen_names(
    trained: Path, note: Path, tmp_path: Path
) -> None:
    loaded = get_task("text-ner").load(trained)
    assert loaded.is_2d()
    result = loaded.predict(note, tmp_path / "out", False)
    assert result.task == "text-ner" and result.files == ["note.txt"]
    assert (tmp_path / "out" / "note.txt").read_text() == note.read_text()
    assert parse_result(json.loads(json.dumps(result.to_json()))) == result
    text = note.read_text()
    found = {(text[e.start : e.end], e.type) for e in result.entities}
    assert ("7654321", "ID") in found and ("11/02/2103", "DATE") in found
    assert any(t == "NAME" and "Novak" in s for s, t in found)
    # a PHI result says where, never what
    assert all(e.text is None for e in result.entities)


def test_explain_shows_tag_probabilities(trained: Path, note: Path, tmp_path: Path) -> None:
    get_task("text-ner").explain(trained, note, ExplainOptions(out=tmp_path / "x"))
    rows = json.loads((tmp_path / "x" / "explanation.json").read_text())["tokens"]
    by_text = {note.read_text()[r["start"] : r["end"]]: r for r in rows}
    assert by_text["7654321"]["p_span"] > 0.5 > by_text["reviewed"]["p_span"]
    assert all(0.0 <= r["p"] <= 1.0 + 1e-6 for r in rows)
    assert "<span" in (tmp_path / "x" / "explanation.html").read_text()


def test_onnx_emissions_match_torch(trained: Path, note: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = get_task("text-ner").export(trained)
    tagger = load_tagger(trained)
    from medsight.text.models.tagger_inputs import collate
    from medsight.text.models.tagger_tokens import tokenize

    inputs, _ = collate(tagger.chunks(tokenize(note.read_text())))
    with torch.inference_mode():
        expected = tagger.network(inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {k: inputs[k].numpy() for k in ("words", "shapes", "chars")}
    np.testing.assert_allclose(session.run(None, feed)[0], expected, atol=1e-4)


class _KilledAfterFirstEpoch:
    """A progress bar whose owner is killed once epoch 1's state is saved."""

    def __enter__(self) -> _KilledAfterFirstEpoch:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, bar: int, completed: int, description: str) -> None:
        if completed == 1:
            raise KeyboardInterrupt


def test_resume_ends_with_the_uninterrupted_weights(
    planted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = replace(OPTIONS, max_epochs=2)
    whole = _train(planted, tmp_path / "whole", options)
    with monkeypatch.context() as patched:
        patched.setattr(ner_train, "progress_bar", _KilledAfterFirstEpoch)
        with pytest.raises(KeyboardInterrupt):
            _train(planted, tmp_path / "cut", options)
    cut = tmp_path / "cut"
    assert json.loads((cut / "checkpoints" / "last.json").read_text())["epoch"] == 1
    get_task("ner").train(planted, cut, replace(options, resume=True))
    a = load_file(str(whole / "model.safetensors"))
    b = load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(InputError, match="same settings"):
        get_task("ner").train(planted, cut, replace(options, max_epochs=3, resume=True))


def test_wrong_labels_key_and_init_from_other_network(planted: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing field 'entities'"):
        get_task("ner").train(planted, tmp_path / "r", replace(OPTIONS, labels="entities"))
    with pytest.raises(InputError, match="--labels entities or phi"):
        get_task("ner").train(planted, tmp_path / "r", replace(OPTIONS, labels="sentiment"))
    bogus = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"head.weight": torch.zeros(2, 2)}, str(bogus))
    with pytest.raises(InputError, match="no tensor matches"):
        _train(planted, tmp_path / "r2", replace(OPTIONS, max_epochs=1, init_weights=bogus))


def test_bad_notes_are_refused_in_one_line(trained: Path, tmp_path: Path) -> None:
    loaded = get_task("ner").load(trained)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01PK\x03\x04" * 10)
    for path, message in [(empty, "empty"), (binary, "binary"), (tmp_path / "no.txt", "no such")]:
        with pytest.raises(InputError, match=message):
            loaded.predict(path, tmp_path / "out", False)


def test_init_from_a_trained_run_starts_where_it_left_off(
    trained: Path, planted: Path, tmp_path: Path
) -> None:
    options = replace(OPTIONS, max_epochs=1, init_weights=trained / "model.safetensors")
    run = _train(planted, tmp_path / "warm", options)
    first = (run / "history.csv").read_text().splitlines()[1].split(",")
    assert float(first[2]) > 0.9  # tuning F1 after one epoch (a fresh start: about 0.25)


def test_notes_unlike_the_training_notes_get_a_warning(trained: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    lines = [
        {"subject_id": i, "text": f"Bibasilar atelectasis, unchanged since study {i}.", "phi": []}
        for i in range(4)
    ]
    other.write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    get_task("ner").evaluate(trained, EvaluateOptions(out=out, data=other, n_boot=20))
    assert json.loads((out / "metrics.json").read_text())["unknown_word_share"] > 0.3
    assert "never occurred in the training notes" in (out / "report.html").read_text()
