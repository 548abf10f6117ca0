"""Same seed, same bytes; another seed, other notes; the defaults are quick to make."""

import time
from pathlib import Path

from medsight.text.synth.notes_corpus import write_notes_corpus

FILES = ("radiology.jsonl", "discharge.jsonl", "feedback.jsonl", "notes.csv", "assert.csv",
         "manifest.json")  # fmt: skip


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_notes_corpus(tmp_path / name, 0 if name != "c" else 1, reports=40, discharge=20,
                           feedback=30)  # fmt: skip
    for file in FILES:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "radiology.jsonl").read_bytes() != (
        tmp_path / "c" / "radiology.jsonl"
    ).read_bytes()


def test_a_report_does_not_change_when_the_cohort_grows(tmp_path: Path) -> None:
    case = {
        "case_id": "case_0001",
        "patient_id": "P1",
        "label": "benign",
        "size_mm": 11.0,
        "lobe": "left lower lobe",
        "character": "smooth",
        "study_date": "2021-05-03",
    }
    other = {**case, "case_id": "case_0002", "patient_id": "P2", "label": "normal"}
    write_notes_corpus(tmp_path / "one", 0, cases=[case], discharge=0, feedback=0)
    write_notes_corpus(tmp_path / "two", 0, cases=[case, other], discharge=0, feedback=0)
    one = (tmp_path / "one" / "radiology.jsonl").read_text().splitlines()
    two = (tmp_path / "two" / "radiology.jsonl").read_text().splitlines()
    assert one[0] == two[0]


def test_the_default_corpus_is_written_in_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    manifest = write_notes_corpus(tmp_path / "d", 0)
    assert time.perf_counter() - started < 5
    assert manifest["counts"]["radiology"] == manifest["counts"]["discharge"] == 300
