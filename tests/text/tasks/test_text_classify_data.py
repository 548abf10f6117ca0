"""text-classify data: layouts, default outputs, the patient-level split, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.text.tasks.classify_data import load_classify_data, patient_split

RADLABELS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "text" / "radlabels"


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n: int = 30) -> list[dict]:
    return [
        {
            "note_id": f"n{i}",
            "subject_id": f"p{i // 2}",
            "time": "2100-01-01",
            "text": f"note {i} was {'good' if i % 2 else 'bad'}",
            "sentiment": "positive" if i % 2 else "negative",
            "topic": "food",
        }
        for i in range(n)
    ]


def test_synthetic_report_findings_become_finding_outputs(tmp_path: Path) -> None:
    rows = [
        {
            "note_id": f"r{i}",
            "subject_id": f"p{i}",
            "time": "2100-01-01",
            "text": f"report {i}",
            "findings": {
                "lung_nodule_or_mass": ["present", "absent", "not mentioned"][i % 3],
                "pneumothorax": "absent" if i < 2 else "not mentioned",
            },
        }
        for i in range(30)
    ]
    data = load_classify_data(_write_jsonl(tmp_path / "radiology.jsonl", rows))
    # pneumothorax has 2 absent notes: too few for a default output, and said so
    assert list(data.classes) == ["finding:lung_nodule_or_mass"]
    assert data.classes["finding:lung_nodule_or_mass"] == ["present", "absent", "not mentioned"]
    assert any("pneumothorax" in note for note in data.notes)


def test_sentiment_is_the_default_output_and_labels_pick_others(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "feedback.jsonl", [*_rows(), *_rows()[:0]])
    assert list(load_classify_data(path).classes) == ["sentiment"]
    rows = _rows()
    for i, row in enumerate(rows):
        row["topic"] = ["food", "staff"][i % 3 == 0]
    path = _write_jsonl(tmp_path / "feedback2.jsonl", rows)
    assert list(load_classify_data(path, "sentiment,topic").classes) == ["sentiment", "topic"]


def test_no_patient_is_in_two_splits() -> None:
    subjects = [f"p{i // 3}" for i in range(300)]
    split = patient_split(subjects, seed=1)
    for subject in set(subjects):
        assert len({split[i] for i, s in enumerate(subjects) if s == subject}) == 1
    patients = {s: split[i] for i, s in enumerate(subjects)}
    shares = {
        name: list(patients.values()).count(name) / 100 for name in ("train", "tuning", "test")
    }
    assert shares == {"train": 0.70, "tuning": 0.15, "test": 0.15}
    assert np.array_equal(split, patient_split(subjects, seed=1))
    assert not np.array_equal(split, patient_split(subjects, seed=2))


def test_a_missing_label_column_is_named(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "f.jsonl", _rows())
    with pytest.raises(InputError, match="--labels mood: no such column"):
        load_classify_data(path, "mood")


def test_a_label_column_with_one_class_is_refused(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "f.jsonl", _rows())
    with pytest.raises(InputError, match="'topic' has 1 class"):
        load_classify_data(path, "topic")


def test_empty_text_names_the_row_not_the_text(tmp_path: Path) -> None:
    rows = _rows()
    rows[3]["text"] = "   "
    with pytest.raises(InputError, match="row 4") as caught:
        load_classify_data(_write_jsonl(tmp_path / "f.jsonl", rows))
    assert "bad" not in str(caught.value)


def test_a_folder_without_the_radlabels_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="reports/\\*.txt and labels.json"):
        load_classify_data(tmp_path)


def test_radlabels_layout_maps_labels_and_missing_is_not_mentioned(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    labels = {}
    for i in range(12):
        (tmp_path / "reports" / f"r{i:02d}.txt").write_text(f"FINDINGS: case {i}.\n")
        labels[f"r{i:02d}"] = (
            {"pleural_effusion": ["definitely present", "definitely absent", "uncertain"][i % 3]}
            if i < 9
            else {}
        )
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    data = load_classify_data(tmp_path, "finding:pleural_effusion")
    assert data.labels["finding:pleural_effusion"][:4] == [
        "present",
        "absent",
        "uncertain",
        "present",
    ]
    assert data.labels["finding:pleural_effusion"][9:] == ["not mentioned"] * 3
    assert data.subjects[0] == "r00"


def test_the_real_radlabels_reports_read_as_48_findings() -> None:
    if not (RADLABELS / "labels.json").is_file():
        pytest.skip("shared radlabels reports are not on this machine")
    data = load_classify_data(RADLABELS)
    assert len(data) == 1000 and len(set(data.subjects)) == 1000
    assert "finding:pleural_effusion" in data.classes
    assert len(data.classes) + 8 == 48  # 8 findings lack two classes of 5+ reports
