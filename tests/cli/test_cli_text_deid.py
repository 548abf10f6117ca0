"""`medsight text deid IN OUT` on a folder of notes and on notes tables: same names and
formats out, spans.jsonl in input offsets, a PHI-free summary, pseudonymised subject ids and
shifted times that match the EHR de-identification, nothing from a note on the console, and
one-line errors with exit 2."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from medsight.cli import text_deid
from medsight.cli.main import main
from medsight.ehr.deid.patient_keys import patient_keys
from medsight.errors import InputError
from medsight.text.evaluate.deid_scores import leaked

KEY = "cli-test-key-0123456789"

#: (file name, text, the PHI strings planted in it)
NOTES = [
    (
        "er_visit.txt",
        "ED NOTE 11/02/2023. Pt Ottoline Vasquez-Brandt, MRN 00839211, a 93 yo F from "
        "Bakersfield, seen with her granddaughter Ana. Call (412) 555-7788.\n"
        "Foley catheter placed. Murphy's sign negative.\n",
        [
            "11/02/2023",
            "Ottoline",
            "Vasquez-Brandt",
            "00839211",
            "93",
            "Bakersfield",
            "Ana",
            "(412) 555-7788",
        ],
    ),
    (
        "letter.txt",
        "Dear Dr. Szymanski,\nI saw Mrs. Gwendolyn Marchetti at Lakeside Medical Center on "
        "January 9, 2024. She lives at 1420 Brookline Ave, Worcester, MA 01605 and can be "
        "reached at g.marchetti@mail.example.com.\nSincerely,\nRosalind Achterberg, MD\n",
        [
            "Szymanski",
            "Gwendolyn",
            "Marchetti",
            "Lakeside Medical Center",
            "January 9, 2024",
            "1420 Brookline Ave",
            "01605",
            "g.marchetti@mail.example.com",
            "Rosalind",
            "Achterberg",
        ],
    ),
]


def run(*args: str) -> Result:
    app = typer.Typer()
    app.command()(text_deid.deid)
    return CliRunner().invoke(app, list(args))


def phi_strings() -> list[str]:
    return [s for _, _, planted in NOTES for s in planted]


def survivors(planted: list[str], text: str) -> list[str]:
    """The planted strings standing in ``text`` as whole words ("93" not in "934")."""
    return [s for s in planted if leaked(s, text)]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    for name, text, _ in NOTES:
        (notes / name).write_text(text, encoding="utf-8")
    return notes


@pytest.mark.parametrize("mode", ["surrogate", "tag"])
def test_folder_in_same_names_out_no_phi_left(folder: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out"
    result = run(str(folder), str(out), "--key", KEY, "--mode", mode)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "er_visit.txt",
        "letter.txt",
        "spans.jsonl",
        "summary.json",
    ]
    for name, _, planted in NOTES:
        deidentified = (out / name).read_text(encoding="utf-8")
        assert survivors(planted, deidentified) == []
        assert "Foley catheter placed" in deidentified or name != "er_visit.txt"
    rows = [json.loads(line) for line in (out / "spans.jsonl").read_text().splitlines()]
    assert [r["note_id"] for r in rows] == ["er_visit", "letter"]
    for row, (_, text, planted) in zip(rows, NOTES, strict=True):
        masked = [text[s["start"] : s["end"]] for s in row["spans"]]
        for phi in planted:  # every planted string lies inside a masked span (input offsets)
            at = text.index(phi)
            assert any(s["start"] <= at and at + len(phi) <= s["end"] for s in row["spans"]), phi
        assert all(set(s) == {"start", "end", "type"} for s in row["spans"]) and masked
    summary_text = (out / "summary.json").read_text()
    summary = json.loads(summary_text)
    assert summary["notes"] == 2 and summary["mode"] == mode
    assert summary["spans"] == sum(len(r["spans"]) for r in rows)
    assert survivors(phi_strings(), summary_text) == []


def test_nothing_from_a_note_reaches_the_console_or_the_log(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MEDSIGHT_DEID_KEY", KEY)
    monkeypatch.setattr(sys, "argv", ["medsight", "text", "deid", str(folder), str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    captured = capsys.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "notes" in shown  # the summary table was printed
    assert survivors(phi_strings(), shown) == []


def test_a_notes_table_keeps_its_format_pseudonymises_and_shifts(tmp_path: Path) -> None:
    table = tmp_path / "notes.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", "subject_id", "time", "text", "kind", "sentiment"])
        writer.writerow(["n1", "MRN-1", "2023-11-02T08:30:00", NOTES[0][1], "ed", "neutral"])
        writer.writerow(
            ["n2", "MRN-1", "2023-11-05", "Ana called. Ottoline doing well.", "phone", "positive"]
        )
        writer.writerow(["n3", "MRN-2", "2024-01-09", NOTES[1][1], "letter", "neutral"])
    out = tmp_path / "out"
    result = run(str(table), str(out), "--key", KEY)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "notes.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["note_id", "subject_id", "time", "text", "kind", "sentiment"]
    assert [r["note_id"] for r in rows] == ["n1", "n2", "n3"]
    assert [r["sentiment"] for r in rows] == ["neutral", "positive", "neutral"]
    keys = patient_keys(KEY, "MRN-1")
    assert rows[0]["subject_id"] == rows[1]["subject_id"] == str(keys.subject_id)
    assert rows[2]["subject_id"] == str(patient_keys(KEY, "MRN-2").subject_id)
    moved = dt.datetime(2023, 11, 2, 8, 30) + dt.timedelta(days=keys.offset_days)
    assert rows[0]["time"] == moved.isoformat()
    # the note's own date moved by the same offset as the record's time
    assert moved.strftime("%m/%d/%Y") in rows[0]["text"]
    # "Ana" and "Ottoline" are names in n1, so they are masked in n2 too, with the same fakes
    assert "Ana" not in rows[1]["text"] and "Ottoline" not in rows[1]["text"]
    n1_words = set(re.findall(r"\w+", rows[0]["text"]))
    assert re.findall(r"\w+", rows[1]["text"])[0] in n1_words
    for row in rows:
        assert survivors(phi_strings(), row["text"]) == []


def test_a_jsonl_table_stays_jsonl_with_its_extra_fields(tmp_path: Path) -> None:
    table = tmp_path / "notes.jsonl"
    record = {
        "note_id": "a",
        "subject_id": 7,
        "time": "2024-01-09",
        "text": NOTES[1][1],
        "findings": {"x": "present"},
    }
    table.write_text(json.dumps(record) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run(str(table), str(out), "--key", KEY).exit_code == 0
    (row,) = [json.loads(line) for line in (out / "notes.jsonl").read_text().splitlines()]
    assert row["findings"] == {"x": "present"} and row["subject_id"] != 7
    assert "Marchetti" not in row["text"]


def test_key_file_and_key_env_give_the_same_output_as_key(folder: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "deid.key"
    key_file.write_text(KEY + "\n")
    run(str(folder), str(tmp_path / "a"), "--key", KEY)
    run(str(folder), str(tmp_path / "b"), "--key-file", str(key_file))
    env = CliRunner(env={"MY_KEY": KEY})
    app = typer.Typer()
    app.command()(text_deid.deid)
    env.invoke(app, [str(folder), str(tmp_path / "c"), "--key-env", "MY_KEY"])
    texts = {p: (tmp_path / p / "letter.txt").read_text() for p in "abc"}
    assert texts["a"] == texts["b"] == texts["c"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "short"], "at least 16"),
        (["--key", KEY, "--mode", "blank"], "--mode"),
    ],
)
def test_bad_options_are_input_errors(
    folder: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(str(folder), str(tmp_path / "out"), *args)
    assert isinstance(result.exception, InputError) and message in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_out_inside_in_or_a_foreign_out_is_refused(folder: Path, tmp_path: Path) -> None:
    inside = run(str(folder), str(folder / "out"), "--key", KEY)
    assert isinstance(inside.exception, InputError) and "inside IN" in str(inside.exception)
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    refused = run(str(folder), str(foreign), "--key", KEY)
    assert isinstance(refused.exception, InputError)
    assert (foreign / "keep.txt").read_text() == "x"
    parent = run(str(folder / "letter.txt"), str(folder), "--key", KEY)
    assert isinstance(parent.exception, InputError) and "contains IN" in str(parent.exception)


def test_an_earlier_output_is_replaced_whole(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(folder), str(out), "--key", KEY).exit_code == 0
    (folder / "er_visit.txt").unlink()
    assert run(str(folder), str(out), "--key", KEY).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["letter.txt", "spans.jsonl", "summary.json"]


def test_bad_input_is_one_line_exit_2_without_note_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("note_id,text\nn1,Patient Ottoline Vasquez seen\n", encoding="utf-8")
    monkeypatch.setattr(
        sys, "argv", ["medsight", "text", "deid", str(table), str(tmp_path / "o"), "--key", KEY]
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    err = lines[0]
    assert "Ottoline" not in err and "missing required column" in err
    assert not (tmp_path / "o").exists()


def test_model_spans_are_masked_beside_the_rules(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--model adds a tagger's spans to the rules' (here a stand-in tagger that finds
    "Foley", which the rules keep as the catheter's name)."""

    def tagger(run: Path):  # type: ignore[no-untyped-def]
        assert run == tmp_path / "run"
        return lambda text: [(m.start(), m.end(), "NAME") for m in re.finditer("Foley", text)]

    monkeypatch.setattr(text_deid, "_tagger_spans", tagger)
    out = tmp_path / "out"
    result = run(str(folder), str(out), "--key", KEY, "--model", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "Foley" not in (out / "er_visit.txt").read_text()
    assert json.loads((out / "summary.json").read_text())["model"] == str(tmp_path / "run")


def test_a_trained_text_ner_phi_run_loads_and_tags(folder: Path, tmp_path: Path) -> None:
    import medsight.text.tasks.ner  # noqa: F401  (registers text-ner)
    from medsight.tasks import get_task
    from medsight.tasks.options import TrainOptions
    from medsight.text.models.tagger_sizes import TaggerSizes
    from medsight.text.tasks.ner_config import NerPlan, write_plan

    data = tmp_path / "phi.jsonl"
    name = "Zork Quibble"
    text = f"Seen today with {name} at the bedside."
    span = {"start": text.index(name), "end": text.index(name) + len(name), "type": "NAME"}
    rows = [{"text": text, "subject_id": f"S{i}", "phi": [span]} for i in range(12)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = tmp_path / "run"
    sizes = TaggerSizes(word_dim=8, shape_dim=4, char_dim=8, char_filters=8, hidden_dim=8)
    write_plan(model / "plan.json", NerPlan(sizes=sizes, batch_size=8, learning_rate=0.05))
    get_task("ner").train(data, model, TrainOptions(max_epochs=1, labels="phi", seed=0))
    out = tmp_path / "out"
    result = run(str(folder), str(out), "--key", KEY, "--model", str(model))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["notes"] == 2
    for name_, _, planted in NOTES:
        assert survivors(planted, (out / name_).read_text()) == [], (out / name_).read_text()


def test_model_that_is_not_a_text_ner_run_is_refused(folder: Path, tmp_path: Path) -> None:
    result = run(str(folder), str(tmp_path / "out"), "--key", KEY, "--model", str(tmp_path))
    assert isinstance(result.exception, InputError)
    assert not (tmp_path / "out").exists()
