"""On the synthetic discharge summaries (`medsight synth notes`, PHI planted at known spans):
every planted PHI string is masked and none survives, per type, in both modes; the notes
without PHI (radiology reports, feedback) keep everything but their dates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import KEY
from medsight.text.deid.deidentify import deidentify_text
from medsight.text.deid.phi_span import PHI_TYPES
from medsight.text.evaluate.deid_scores import deid_scores
from medsight.text.synth.notes_corpus import write_notes_corpus

#: ages under 90 are not PHI (HIPAA Safe Harbor keeps them; the design masks ages over 89):
#: the generator plants every age, so those are left out of the gold here
SAFE_HARBOR_AGE = 90


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "notes"
    write_notes_corpus(out, 11, reports=20, discharge=60, feedback=20)
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _phi_gold(row: dict) -> list[dict]:
    text = row["text"]
    return [
        g
        for g in row["phi"]
        if g["type"] != "AGE"
        or not text[g["start"] : g["end"]].isdigit()
        or int(text[g["start"] : g["end"]]) >= SAFE_HARBOR_AGE
    ]


@pytest.mark.parametrize("mode", ["surrogate", "tag"])
def test_every_planted_phi_is_masked_and_none_leaks(corpus: Path, mode: str) -> None:
    rows = _rows(corpus / "discharge.jsonl")
    results = [
        deidentify_text(r["text"], key=KEY, patient=str(r["subject_id"]), mode=mode) for r in rows
    ]
    scores = deid_scores(
        [r["text"] for r in rows],
        [_phi_gold(r) for r in rows],
        [[s.as_record() for s in res.spans] for res in results],
        [res.text for res in results],
    )
    planted = {t for t, row in scores["per_type"].items() if row["n_gold"]}
    assert planted >= set(PHI_TYPES) - {"AGE"}  # the generator plants every type
    assert {t: scores["per_type"][t]["recall"] for t in planted} == dict.fromkeys(planted, 1.0)
    assert scores["leaked"] == 0, {t: row["leaked"] for t, row in scores["per_type"].items()}
    assert scores["precision"] >= 0.99


def test_notes_without_phi_lose_only_their_dates(corpus: Path) -> None:
    for name in ("radiology.jsonl", "feedback.jsonl"):
        for row in _rows(corpus / name):
            spans = deidentify_text(row["text"], key=KEY, patient="P").spans
            assert {s.type for s in spans} <= {"DATE"}, (name, row["note_id"])
