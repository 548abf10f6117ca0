"""Reference labels file, disagreement examples and the agreement page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.evaluate.agreement_per_finding import agreement_per_finding
from medsight.text.labeller.agreement_page import agreement_html
from medsight.text.labeller.disagreements import NOT_FOUND, disagreement_examples
from medsight.text.labeller.reference_labels import read_reference_labels


def test_reference_labels_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(
        json.dumps({"a": {"pneumothorax": "definitely absent", "edema": "uncertain"}, "b": {}})
    )
    assert read_reference_labels(path) == {
        "a": {"pneumothorax": "absent", "edema": "uncertain"},
        "b": {},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1]", "expected an object"),
        ('{"a": {"x": "probably"}}', "report a, finding x: unknown label"),
        ('{"a": 3}', "report a: expected an object"),
        ("{", "not a readable JSON file"),
    ],
)
def test_bad_reference_labels_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_reference_labels(path)


def test_examples_spread_over_kinds_and_page_escapes(analysed: Callable) -> None:
    texts = {
        "r1": "FINDINGS: No effusion. Heart normal.\n",
        "r2": "FINDINGS: Possible effusion <b>.\n",
        "r3": "FINDINGS: Lungs clear.\nIMPRESSION: Normal chest.\n",
        "r4": "FINDINGS: Small effusion.\n",
    }
    notes = {
        "r1": analysed(texts["r1"], [("effusion", "pleural_effusion", {"negation": "negated"})]),
        "r2": analysed(texts["r2"], [("effusion", "pleural_effusion", {"certainty": "uncertain"})]),
        "r3": analysed(texts["r3"], []),
        "r4": analysed(texts["r4"], [("effusion", "pleural_effusion", {})]),
    }
    ours = {
        "r1": {"pleural_effusion": "absent"},
        "r2": {"pleural_effusion": "uncertain"},
        "r3": {},
        "r4": {"pleural_effusion": "present"},
    }
    reference = {
        "r1": {"pleural_effusion": "present"},
        "r2": {"pleural_effusion": "present"},
        "r3": {"pleural_effusion": "present"},
        "r4": {"pleural_effusion": "present"},
    }
    reports = {rid: (texts[rid], notes[rid]) for rid in texts}
    examples = disagreement_examples(reports, ours, reference, ["pleural_effusion"], per_finding=2)
    rows = examples["pleural_effusion"]
    # three kinds (P->A, P->U, P->not mentioned), two asked for: two different kinds
    assert [(r.report_id, r.ours) for r in rows] == [("r1", "absent"), ("r3", "not mentioned")]
    assert rows[0].snippet == "FINDINGS: No effusion."
    assert rows[0].mentions == ["findings: absent (negated, certain, recent, patient)"]
    assert rows[1].snippet == NOT_FOUND + "Normal chest."
    every = disagreement_examples(reports, ours, reference, ["pleural_effusion"])
    assert len(every["pleural_effusion"]) == 3
    agreement = agreement_per_finding(ours, reference, ["pleural_effusion"], n_boot=20)
    page = agreement_html(agreement, every)
    assert "Possible effusion &lt;b&gt;." in page and "<b>." not in page
    assert "P→A 1, P→U 1, P→– 1" in page
