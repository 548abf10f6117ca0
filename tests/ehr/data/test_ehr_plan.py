"""The EHR plan: read from the train split only, editable, saved and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hand_made_meds import history, label_table, write_meds

from medsight.ehr.data.plan import make_ehr_plan, read_ehr_plan, write_ehr_plan
from medsight.ehr.io.meds_dataset import open_meds
from medsight.errors import InputError


def _data(tmp_path: Path):
    rows = [r for s in range(1, 9) for r in history(s, days=60)]
    # codes only tuning/held-out subjects have, and extreme values there
    rows += [(9, 1.0, "LOINC//TUNING-ONLY", 5.0), (9, 2.0, "LOINC//TUNING-ONLY", 6.0)]
    rows += [(10, 1.0, "LOINC//4548-4", 1e6), (10, 2.0, "LOINC//4548-4", 1e6)]
    return open_meds(write_meds(tmp_path / "m", rows, splits={9: "tuning", 10: "held_out"}))


def test_vocabulary_and_value_statistics_come_from_train_only(tmp_path: Path) -> None:
    data = _data(tmp_path)
    plan = make_ehr_plan(data, label_table([(s, 50, s % 2 == 0) for s in range(1, 11)]))
    assert "LOINC//TUNING-ONLY" not in plan.vocabulary
    assert plan.vocabulary[0] in {"ENCOUNTER//ambulatory", "LOINC//4548-4"}
    stats = plan.values["LOINC//4548-4"]
    assert stats.count == 8 * 6 and stats.mean < 20  # held-out's 1e6 values are not in it
    assert stats.edges == sorted(stats.edges) and len(stats.edges) <= plan.value_bins - 1
    assert plan.model.vocab_size == len(plan.vocabulary) + 2
    assert plan.planned_with_labels and plan.fingerprint["train_samples"] == 8
    assert any("Vocabulary" in n for n in plan.notes)


def test_without_labels_the_plan_says_so(tmp_path: Path) -> None:
    plan = make_ehr_plan(_data(tmp_path), None)
    assert not plan.planned_with_labels
    assert any("without labels" in n for n in plan.notes)


def test_an_edited_plan_is_read_back_and_a_broken_one_refused(tmp_path: Path) -> None:
    plan = make_ehr_plan(_data(tmp_path), None)
    path = write_ehr_plan(tmp_path / "plan.json", plan.model_copy(update={"max_events": 7}))
    assert read_ehr_plan(path).max_events == 7
    path.write_text(path.read_text().replace('"max_events": 7', '"max_events": -1'))
    with pytest.raises(InputError, match="invalid EHR plan: max_events"):
        read_ehr_plan(path)
    with pytest.raises(InputError, match="medsight plan"):
        read_ehr_plan(tmp_path / "missing.json")
