"""label_notes end to end with a stand-in pipeline: labels.csv, agreement.json and .html."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.io.note import Note
from medsight.text.labeller.label_run import label_notes
from medsight.text.pipeline.annotations import AnalyzedNote, Entity


class KeywordPipeline:
    """Finds "effusion" and "pneumothorax"; "no X" is negated, "possible X" uncertain."""

    def pipe(self, notes: Iterable[Note], batch_size: int = 64) -> Iterator[AnalyzedNote]:
        for note in notes:
            entities = []
            for match in re.finditer(r"(no |possible )?(effusion|pneumothorax)", note.text):
                concept = "pleural_effusion" if match[2] == "effusion" else "pneumothorax"
                entities.append(
                    Entity(
                        match.start(2),
                        match.end(2),
                        "finding",
                        match[2],
                        concept,
                        "findings",
                        negation="negated" if match[1] == "no " else "affirmed",
                        certainty="uncertain" if match[1] == "possible " else "certain",
                    )
                )
            yield AnalyzedNote(note.note_id, [], [(0, len(note.text))], entities)


NOTES = [
    Note("a", "Small effusion. no pneumothorax."),
    Note("b", "possible effusion."),
    Note("c", "Clear lungs."),
]


def test_labels_and_agreement_files(tmp_path: Path) -> None:
    gold = tmp_path / "labels.json"
    gold.write_text(
        json.dumps(
            {
                "a": {
                    "pleural_effusion": "definitely present",
                    "pneumothorax": "definitely absent",
                },
                "b": {"pleural_effusion": "definitely present"},
                "c": {},
                "z": {"pneumothorax": "uncertain"},  # not among the notes
            }
        )
    )
    summary = label_notes(NOTES, tmp_path / "out", gold, pipeline=KeywordPipeline(), n_boot=50)
    rows = list(csv.DictReader((tmp_path / "out" / "labels.csv").open()))
    assert [r["note_id"] for r in rows] == ["a", "b", "c"]
    assert len(rows[0]) == 1 + 48
    assert (rows[0]["pleural_effusion"], rows[0]["pneumothorax"]) == ("present", "absent")
    assert rows[1]["pleural_effusion"] == "uncertain"
    assert rows[2]["cardiomegaly"] == "not mentioned"
    assert summary.n_reference_unmatched == 1
    record = json.loads((tmp_path / "out" / "agreement.json").read_text())
    effusion = record["agreement"]["findings"]["pleural_effusion"]
    assert effusion["confusion"][0] == [1, 0, 1, 0]  # reference present: ours P, U
    assert record["n_reports_scored"] == 3
    example = record["examples"]["pleural_effusion"][0]
    assert (example["report_id"], example["ours"], example["snippet"]) == (
        "b",
        "uncertain",
        "possible effusion.",
    )
    assert "pneumothorax" not in record["examples"]
    assert "possible effusion." in (tmp_path / "out" / "agreement.html").read_text()


def test_no_examples_writes_no_report_text(tmp_path: Path) -> None:
    gold = tmp_path / "labels.json"
    gold.write_text(json.dumps({"b": {"pleural_effusion": "definitely absent"}}))
    label_notes(NOTES, tmp_path / "out", gold, pipeline=KeywordPipeline(), examples=0, n_boot=20)
    for name in ("agreement.json", "agreement.html", "labels.csv"):
        assert "possible effusion" not in (tmp_path / "out" / name).read_text()


def test_unmatched_reference_and_repeated_ids_are_refused(tmp_path: Path) -> None:
    gold = tmp_path / "labels.json"
    gold.write_text(json.dumps({"x": {}}))
    with pytest.raises(InputError, match="none of its reports is among the notes"):
        label_notes(NOTES, tmp_path / "out", gold, pipeline=KeywordPipeline(), n_boot=10)
    with pytest.raises(InputError, match="note_id repeats"):
        label_notes([NOTES[0], NOTES[0]], tmp_path / "o2", pipeline=KeywordPipeline())
