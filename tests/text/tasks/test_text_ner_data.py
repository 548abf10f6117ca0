"""text-ner data: bad JSONL lines get one clear error naming the line (never the note's text),
and the split keeps a patient's notes together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.tasks.ner_data import labels_key, read_ner_jsonl, split_notes

SECRET = "Zelda Quixote"


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


GOOD = {"text": f"Patient {SECRET} seen.", "phi": [{"start": 8, "end": 21, "type": "NAME"}]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"text": GOOD["text"], "phi": [{"start": 8, "end": 99, "type": "NAME"}]}, "out of range"),
        (
            {
                "text": GOOD["text"],
                "phi": [
                    {"start": 8, "end": 14, "type": "NAME"},
                    {"start": 10, "end": 21, "type": "NAME"},
                ],
            },
            "spans overlap",
        ),
        ({"text": GOOD["text"]}, "missing field 'phi'"),
        ({"phi": []}, "missing field 'text'"),
        ({"text": "   ", "phi": []}, "empty text"),
        ({"text": GOOD["text"], "phi": [{"start": "8", "end": 21, "type": "NAME"}]}, "integers"),
        ({"text": GOOD["text"], "phi": [{"start": 8, "end": 21}]}, "type must be"),
    ],
)
def test_bad_lines_name_the_line_and_field_not_the_text(
    tmp_path: Path, bad: dict[str, object], message: str
) -> None:
    path = _write(tmp_path / "notes.jsonl", [GOOD, bad])
    with pytest.raises(InputError, match=message) as caught:
        read_ner_jsonl(path, "phi")
    assert "notes.jsonl: line 2" in str(caught.value)
    assert SECRET not in str(caught.value) and "Zelda" not in str(caught.value)


def test_not_json_and_unknown_labels(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        read_ner_jsonl(path, "phi")
    with pytest.raises(InputError, match="--labels entities or phi"):
        labels_key("findings")
    assert labels_key("") == "entities"


def test_split_is_by_patient_seeded_and_70_15_15(tmp_path: Path) -> None:
    records = [
        {"text": f"note {i}", "subject_id": f"p{i // 3}", "entities": []} for i in range(120)
    ]
    notes = read_ner_jsonl(_write(tmp_path / "n.jsonl", records), "entities")
    splits = split_notes(notes, seed=1)
    assert split_notes(notes, seed=1) == splits and split_notes(notes, seed=2) != splits
    groups = {s: {notes[i].group for i in idx} for s, idx in splits.items()}
    assert not (groups["train"] & groups["tuning"]) and not (groups["train"] & groups["test"])
    assert [len(groups[s]) for s in ("train", "tuning", "test")] == [28, 6, 6]
