"""`medsight synth notes`: the chest-CT cohort's cases, the EHR cohort's patients, bad input."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsight.cli.notes_cohorts import chest_ct_cases, nodule_character, nodule_lobe
from medsight.cli.synth import app
from medsight.errors import InputError
from medsight.text.synth.notes_corpus import write_notes_corpus


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cli_writes_reports_for_the_chest_ct_cohort(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    args = ["notes", str(out), "--seed", "2", "--reports", "12", "--discharge", "5",
            "--feedback", "6"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"radiology": 12, "discharge": 5, "feedback": 6,
                                  "assert": manifest["counts"]["assert"]}  # fmt: skip
    reports = read_jsonl(out / "radiology.jsonl")
    cases = chest_ct_cases(12, 2)
    assert [r["case_id"] for r in reports] == [c["case_id"] for c in cases]
    for report, case in zip(reports, cases, strict=True):
        assert report["subject_id"] == case["patient_id"]
        assert report["nodule"]["present"] == (case["label"] != "normal")
        assert report["nodule"]["lobe"] == case["lobe"]
        if case["size_mm"]:
            assert abs(report["nodule"]["size_mm"] - case["size_mm"]) <= 1
    assert [r["subject_id"] for r in read_jsonl(out / "discharge.jsonl")] == list("12345")
    assert len((out / "notes.csv").read_text().splitlines()) > 12 + 5 + 6


def test_lobes_follow_the_fissures_and_characters_the_most_telling_feature() -> None:
    assert nodule_lobe("right", (0.9, 0.5, 0.5)) == "right upper lobe"
    assert nodule_lobe("right", (0.45, 0.1, 0.5)) == "right middle lobe"
    assert nodule_lobe("right", (0.45, 0.9, 0.5)) == "right lower lobe"
    assert nodule_lobe("left", (0.45, 0.1, 0.5)) == "left upper lobe"
    assert nodule_lobe("left", (0.1, 0.1, 0.5)) == "left lower lobe"
    assert nodule_character("benign", "central", (), 1.0) == "calcified"
    assert nodule_character("benign", "none", (), 1.0) == "smooth"
    assert nodule_character("malignant", "none", ((0, 0, 1, 1),), 0.5) == "spiculated"
    assert nodule_character("malignant", "none", (), 0.5) == "part-solid"
    assert nodule_character("malignant", "none", (), 1.0) == "lobulated"


def test_a_malformed_case_is_one_clear_error(tmp_path: Path) -> None:
    bad = {"case_id": "case_0007", "patient_id": "P", "label": "benign", "size_mm": 9,
           "lobe": "upper lobe", "character": "smooth"}  # fmt: skip
    with pytest.raises(InputError, match="case_0007: lobe"):
        write_notes_corpus(tmp_path / "x", 0, cases=[bad])
    assert not (tmp_path / "x").exists()
