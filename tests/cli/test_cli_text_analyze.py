"""`medsight text analyze IN -o OUT [--model RUN]`: JSONL and HTML per note, labels from a
trained text-classify run, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsight.cli.main import app
from medsight.errors import InputError

NOTES = {
    "r1": "FINDINGS: No pleural effusion. Possible pneumonia.\nIMPRESSION: 8 mm nodule in the RUL.",
    "r2": "HISTORY: Mother had lung cancer.\nFINDINGS: Moderate cardiomegaly. NG tube in place.",
}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def _invoke(*args: str) -> object:
    return CliRunner().invoke(app, ["text", "analyze", *args])


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_folder_of_notes_gives_jsonl_and_a_highlighted_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _invoke(str(_folder(tmp_path)), "-o", str(out))
    assert result.exit_code == 0, result.output
    records = _lines(out / "analysis.jsonl")
    assert [r["note_id"] for r in records] == ["r1", "r2"]
    first = {e["text"]: e for e in records[0]["entities"]}
    assert first["pleural effusion"]["negation"] == "negated"
    assert first["pneumonia"]["certainty"] == "uncertain"
    assert first["nodule"]["value_mm"] == 8.0 and first["nodule"]["section"] == "impression"
    assert [s["name"] for s in records[1]["sections"]] == ["history", "findings"]
    assert {e["concept"]: e["experiencer"] for e in records[1]["entities"]}[
        "lung cancer"
    ] == "other"
    page = (out / "analysis.html").read_text(encoding="utf-8")
    assert page.count('class="note"') == 2
    assert "negated" in re_mark(page, "pleural effusion")
    # nothing from a note reaches the terminal
    assert "effusion" not in result.output and "analysed 2 notes" in result.output


def re_mark(page: str, text: str) -> str:
    """The class of the first mark around ``text`` ("" if none)."""
    import re

    found = re.search(rf'<mark class="([^"]+)"[^>]*>{re.escape(text)}</mark>', page)
    return found.group(1) if found else ""


def test_a_notes_table_is_read_too(tmp_path: Path) -> None:
    table = tmp_path / "notes.csv"
    table.write_text(
        "note_id,subject_id,time,text\na,p1,2020-01-01,No pneumothorax.\n"
        "b,p2,2020-01-02,Small effusion.\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert _invoke(str(table), "-o", str(out)).exit_code == 0
    records = _lines(out / "analysis.jsonl")
    assert [(r["note_id"], r["entities"][0]["negation"]) for r in records] == [
        ("a", "negated"),
        ("b", "affirmed"),
    ]


def test_bad_input_names_the_file_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n", encoding="utf-8")
    out = tmp_path / "out"
    result = _invoke(str(empty), "-o", str(out))
    assert isinstance(result.exception, InputError) and str(empty) in str(result.exception)
    assert not out.exists()
    result = _invoke(str(_folder(tmp_path)), "-o", str(out), "--model", str(tmp_path / "none"))
    assert isinstance(result.exception, InputError) and "no such run folder" in str(
        result.exception
    )


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny text-classify run whose only output is sentiment (a few seconds to train)."""
    from medsight.tasks.options import TrainOptions
    from medsight.text.tasks.classify import TextClassifyTask
    from medsight.text.tasks.classify_data import load_classify_data
    from medsight.text.tasks.classify_plan import make_plan, write_plan

    folder = tmp_path_factory.mktemp("classify")
    data = folder / "notes.jsonl"
    cues = {"positive": "kind helpful", "negative": "rude slow", "neutral": "usual visit"}
    with data.open("w", encoding="utf-8") as handle:
        for i in range(60):
            sentiment = list(cues)[i % 3]
            text = f"the staff were {cues[sentiment]} today"
            row = {"note_id": f"n{i}", "subject_id": f"p{i // 2}", "time": "2100-01-01",
                   "text": text, "sentiment": sentiment}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    options = TrainOptions(model_name="cnn", max_epochs=2, batch_size=16, labels="sentiment")
    plan = make_plan(load_classify_data(data, options.labels, options.seed), options.labels)
    small = plan.model_copy(update={"embed_dim": 8, "hidden_dim": 8, "layers": 1, "heads": 2})
    run = folder / "run"
    run.mkdir()
    write_plan(run / "plan.json", small)
    TextClassifyTask().train(data, run, options)
    return run


def test_model_labels_are_added_to_each_note(tmp_path: Path, sentiment_run: Path) -> None:
    out = tmp_path / "out"
    result = _invoke(str(_folder(tmp_path)), "-o", str(out), "--model", str(sentiment_run))
    assert result.exit_code == 0, result.output
    records = _lines(out / "analysis.jsonl")
    assert [set(r["labels"]) for r in records] == [{"sentiment"}, {"sentiment"}]
    assert {r["labels"]["sentiment"] for r in records} <= {"positive", "negative", "neutral"}
    assert "<th>label</th>" in (out / "analysis.html").read_text(encoding="utf-8")
