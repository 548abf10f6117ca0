"""Labels look only forward, at outcomes: future events that are not outcomes change nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.labels.label_spec import LabelSpec
from medsight.ehr.labels.templates import iter_labels, make_labels

Maker = Callable[..., Path]

RECORDS = [
    (1, -25567, "MEDS_BIRTH"),
    (1, 0, "ENCOUNTER//inpatient"),
    (1, 0, "ICD10CM//I50.9"),
    (1, 5, "DISCHARGE//home"),
    (1, 20, "ENCOUNTER//inpatient"),
    (1, 25, "DISCHARGE//home"),
    (1, 30, "ENCOUNTER//ambulatory"),
    (1, 200, "ENCOUNTER//ambulatory"),
    (2, -20000, "MEDS_BIRTH"),
    (2, 0, "ENCOUNTER//ambulatory"),
    (2, 3, "ENCOUNTER//inpatient"),
    (2, 9, "DISCHARGE//home"),
    (2, 60, "ICD10CM//E11.21"),
    (2, 61, "ENCOUNTER//ambulatory"),
    (2, 300, "MEDS_DEATH"),
    (3, 0, "ENCOUNTER//inpatient"),
    (3, 12, "DISCHARGE//home"),
    (3, 50, "ENCOUNTER//inpatient"),
    (3, 51, "DISCHARGE//home"),
    (3, 400, "LOINC//4548-4"),
]
NOT_OUTCOMES = ["LOINC//2345-7", "ICD10CM//Z00.00", "ATC//A10BA02", "ICD10CM//E10.9"]
SPECS = [
    LabelSpec(task="readmission", within_days=30, min_events=2, min_history_days=1),
    LabelSpec(task="death", within_days=365, at="each-visit", min_events=3),
    LabelSpec(task="first-code", codes=("ICD10CM//E11.2",), within_days=90, at="each-visit"),
    LabelSpec(task="in-hospital-death", at="each-admission"),
    LabelSpec(task="death", within_days=100, at="age:70"),
]


def _planted(seed: int) -> list[tuple[int, float, str]]:
    """Non-outcome events after each subject's last prediction time, before its last event."""
    rng = np.random.default_rng(seed)
    spans = {1: (30, 200), 2: (61, 300), 3: (51, 400)}  # last anchor .. last event, in days
    rows = []
    for subject, (after, before) in spans.items():
        for when in rng.uniform(after, before, size=25):
            rows.append((subject, float(when), str(rng.choice(NOT_OUTCOMES))))
    return rows


def _labels_and_exclusions(data: Path, spec: LabelSpec) -> tuple[list[dict], dict[str, int]]:
    dataset = open_meds(data)
    excluded: dict[str, int] = {}
    for _, counts in iter_labels(dataset, spec):
        for reason, n in counts.items():
            excluded[reason] = excluded.get(reason, 0) + n
    return make_labels(dataset, spec).to_pylist(), excluded


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.task}@{s.at}")
@pytest.mark.parametrize("seed", [0, 1])
def test_future_non_outcome_events_change_no_label(
    meds_folder: Maker, spec: LabelSpec, seed: int
) -> None:
    before = _labels_and_exclusions(meds_folder(RECORDS), spec)
    after = _labels_and_exclusions(meds_folder(RECORDS + _planted(seed)), spec)
    assert before[0], "the spec labels something, so the comparison means something"
    assert after == before


def test_without_censoring_even_events_after_the_last_change_nothing(meds_folder: Maker) -> None:
    spec = LabelSpec(task="readmission", within_days=30, censor=False)
    late = [(s, 900.0 + s, "LOINC//2345-7") for s in (1, 2, 3)]
    before = make_labels(open_meds(meds_folder(RECORDS)), spec)
    after = make_labels(open_meds(meds_folder(RECORDS + late)), spec)
    assert after.equals(before)


def test_a_planted_outcome_in_the_window_does_change_the_label(meds_folder: Maker) -> None:
    """The control: the comparison above can fail."""
    spec = LabelSpec(task="readmission", within_days=30)
    before = make_labels(open_meds(meds_folder(RECORDS)), spec)
    readmitted = RECORDS + [(3, 13.0, "ENCOUNTER//inpatient")]
    after = make_labels(open_meds(meds_folder(readmitted)), spec)
    flipped = pa.compute.not_equal(before.column("boolean_value"), after.column("boolean_value"))
    assert before.num_rows == after.num_rows and pa.compute.sum(flipped).as_py() == 1


def test_an_outcome_exactly_at_the_prediction_time_is_excluded(meds_folder: Maker) -> None:
    """The boundary: an outcome at t is known at t, so t is dropped, not labelled positive."""
    rows = [(5, 0, "ENCOUNTER//ambulatory"), (5, 9, "LOINC//1"), (5, 20, "ENCOUNTER//ambulatory")]
    spec = LabelSpec(task="first-code", codes=("ICD10CM//N18",), within_days=30, at="each-visit")
    at_t = make_labels(open_meds(meds_folder([*rows, (5, 20, "ICD10CM//N18.3")])), spec)
    assert [r["prediction_time"].day for r in at_t.to_pylist()] == [1]  # only day 0 is left
    assert at_t.column("boolean_value").to_pylist() == [True]
