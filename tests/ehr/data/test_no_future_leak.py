"""THE no-future-leak test: events after the prediction time change nothing a model sees.

Future events are planted into a MEDS folder (other codes, extreme values of known codes,
the outcome code itself, a second sex row): the encoded samples and every registered
model's outputs must be identical with and without them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hand_made_meds import history, label_table, write_meds

from medsight.ehr.data.batches import collate
from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.data.plan import make_ehr_plan
from medsight.ehr.data.sequences import encode_samples
from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.models.registry import create_ehr_model, list_ehr_models

PREDICTION_DAY = 45
SUBJECTS = range(1, 13)


def _rows() -> list:
    rows = []
    for s in SUBJECTS:
        rows += history(s, days=90 if s % 2 else 40, sex="F" if s % 3 else "M")
    return rows


def _future(rows: list) -> list:
    planted = []
    for s in SUBJECTS:
        planted += [
            (s, PREDICTION_DAY + 0.001, "ICD10CM//E11.2", None),  # the outcome itself
            (s, PREDICTION_DAY + 1, "LOINC//4548-4", 1e6),  # an extreme value of a known code
            (s, PREDICTION_DAY + 2, "LOINC//FUTURE-1", -42.0),  # a code seen only later
            (s, PREDICTION_DAY + 300, "MEDS_DEATH", None),
            (s, PREDICTION_DAY + 3, "SEX//M", None),  # a contradicting sex row, later
        ]
    return rows + planted


def _assert_same(a: EncodedSamples, b: EncodedSamples) -> None:
    for name in EncodedSamples.__dataclass_fields__:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def test_planted_future_events_change_no_input_and_no_output(tmp_path: Path) -> None:
    clean = open_meds(write_meds(tmp_path / "clean", _rows()))
    leaky = open_meds(write_meds(tmp_path / "leaky", _future(_rows())))
    labels = label_table([(s, PREDICTION_DAY, s % 2 == 0) for s in SUBJECTS])
    # the plan is made from the clean data and used for both: the vocabulary is not the
    # boundary under test (a plan from the leaky data knows more codes, legitimately)
    plan = make_ehr_plan(clean, labels)
    a = encode_samples(clean, labels, plan)
    b = encode_samples(leaky, labels, plan)
    _assert_same(a, b)
    assert (np.asarray(a.hours_before) >= 0).all()
    # an event at exactly the prediction time is seen, one a millisecond later is not
    assert (a.lengths() > 2).all()

    inputs_a, inputs_b = collate(a, np.arange(len(a))), collate(b, np.arange(len(b)))
    for name in list_ehr_models():
        torch.manual_seed(0)
        model = create_ehr_model(name, plan).eval()
        with torch.no_grad():
            assert torch.equal(model(inputs_a), model(inputs_b)), name


def test_the_encoding_changes_when_the_past_changes(tmp_path: Path) -> None:
    # the test above would pass for an encoder that ignored the data: the past must count
    rows = _rows()
    changed = [(s, d, c, 99.0 if c == "LOINC//4548-4" and d == 10.01 else v) for s, d, c, v in rows]
    a_data = open_meds(write_meds(tmp_path / "a", rows))
    b_data = open_meds(write_meds(tmp_path / "b", changed))
    labels = label_table([(s, PREDICTION_DAY, True) for s in SUBJECTS])
    plan = make_ehr_plan(a_data, labels)
    a, b = encode_samples(a_data, labels, plan), encode_samples(b_data, labels, plan)
    assert not np.array_equal(np.asarray(a.raw_value), np.asarray(b.raw_value), equal_nan=True)


@pytest.mark.parametrize("moment", [0.0, 10.0, 10.01, 10.02])
def test_events_at_the_prediction_time_are_in_and_later_ones_out(
    tmp_path: Path, moment: float
) -> None:
    data = open_meds(write_meds(tmp_path / "m", history(1, days=30)))
    labels = label_table([(1, moment, False)])
    plan = make_ehr_plan(data, labels)
    samples = encode_samples(data, labels, plan)
    # the static sex row + every event at or before the moment (birth, 60 years back, is
    # outside the look-back window)
    visible = 1 + sum(1 for d in range(0, 30, 10) for t in (d, d + 0.01) if t <= moment)
    assert samples.lengths().tolist() == [visible]
