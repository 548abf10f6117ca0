"""Encoding MEDS events into samples: windows, values, times, statics, splits, memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hand_made_meds import history, label_table, write_meds

from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.data.plan import make_ehr_plan
from medsight.ehr.data.sequences import encode_samples
from medsight.ehr.io.meds_dataset import open_meds
from medsight.errors import InputError


def test_samples_carry_age_sex_split_label_and_hours(tmp_path: Path) -> None:
    rows = history(1, days=30, birth_years=50, sex="M") + history(2, days=30, sex="F")
    data = open_meds(write_meds(tmp_path / "m", rows, splits={2: "tuning"}))
    labels = label_table([(1, 25, True), (2, 25, None), (1, 5, False)])
    plan = make_ehr_plan(data, labels)
    s = encode_samples(data, labels, plan)
    by_key = {
        (int(a), str(t)): i
        for i, (a, t) in enumerate(zip(s.subject_id, s.prediction_time, strict=True))
    }
    first = by_key[(1, "2100-01-26T00:00:00.000000")]
    assert s.sex[first] == 2 and s.split[first] == "train" and s.label[first] == 1
    assert abs(s.age_years[first] - (50 + 25 / 365.25)) < 1e-3
    second = by_key[(2, "2100-01-26T00:00:00.000000")]
    assert s.sex[second] == 1 and s.split[second] == "tuning" and s.label[second] == -1
    events = s.events(first)
    hours, delta = s.hours_before[events], s.delta_hours[events]
    # oldest first; the last event (HbA1c on day 20.01) is 4.99 days before day 25
    assert np.all(np.diff(hours[hours > 0]) <= 0)
    assert hours[-1] == pytest.approx(4.99 * 24, abs=1e-3)
    assert delta[-1] == pytest.approx(0.01 * 24, abs=1e-3)
    value_rows = np.isfinite(s.raw_value[events])
    assert (s.value_bin[events][value_rows] > 0).all()
    assert (s.value_bin[events][~value_rows] == 0).all()


def test_history_is_cut_to_the_window_and_the_last_events(tmp_path: Path) -> None:
    data = open_meds(write_meds(tmp_path / "m", history(1, days=200)))
    labels = label_table([(1, 199, True)])
    plan = make_ehr_plan(data, labels).model_copy(update={"max_events": 6, "lookback_days": 1000})
    s = encode_samples(data, labels, plan)
    assert s.lengths().tolist() == [6]
    hours = s.hours_before[s.events(0)]
    assert hours[0] == 0  # the static sex row is kept first
    assert hours[-1] == pytest.approx((199 - 190.01) * 24, abs=1e-3)  # the latest event
    window = plan.model_copy(update={"max_events": 1000, "lookback_days": 25})
    s = encode_samples(data, labels, window)
    assert (s.hours_before[s.events(0)] <= 25 * 24).all()
    assert s.lengths()[0] == 1 + 4  # sex, then days 180, 180.01, 190, 190.01


def _sorted(s: EncodedSamples) -> EncodedSamples:
    order = np.lexsort((np.asarray(s.prediction_time), np.asarray(s.subject_id)))
    return s.subset(order)


def test_shards_on_disk_give_the_samples_held_in_memory(tmp_path: Path) -> None:
    rows = [r for subject in range(1, 30) for r in history(subject, days=20 + subject)]
    labels = label_table([(s, 15 + s % 7, s % 3 == 0) for s in range(1, 30)])
    one = open_meds(write_meds(tmp_path / "one", rows, buckets=1))
    many = open_meds(write_meds(tmp_path / "many", rows, buckets=5))
    assert len(many.shard_paths()) > 1
    plan = make_ehr_plan(one, labels)
    memory = encode_samples(one, labels, plan)
    disk = encode_samples(many, labels, plan, out=tmp_path / "encoded")
    assert isinstance(disk.code, np.memmap) and len(disk) == len(memory) == 29
    a, b = _sorted(memory), _sorted(disk)
    for name in EncodedSamples.__dataclass_fields__:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    reopened = EncodedSamples.open_folder(tmp_path / "encoded")
    assert np.array_equal(np.asarray(reopened.offsets), np.asarray(disk.offsets))


def test_labels_of_subjects_without_events_are_refused(tmp_path: Path) -> None:
    data = open_meds(write_meds(tmp_path / "m", history(1)))
    labels = label_table([(1, 20, True), (777, 20, False)])
    plan = make_ehr_plan(data, label_table([(1, 20, True)]))
    with pytest.raises(InputError, match="1 label rows name subjects with no events"):
        encode_samples(data, labels, plan)


def test_a_label_table_of_unknown_outcomes_encodes_for_prediction(tmp_path: Path) -> None:
    data = open_meds(write_meds(tmp_path / "m", history(1)))
    labels = pa.table(
        {
            "subject_id": pa.array([1], pa.int64()),
            "prediction_time": label_table([(1, 20, None)]).column("prediction_time"),
        }
    )
    plan = make_ehr_plan(data, None)
    from medsight.ehr.data.sequences import encode_table

    table = data.read_shard(data.shard_paths()[0])
    encoded = encode_table(table, labels, plan, {})
    assert encoded.samples.label.tolist() == [-1]
    assert encoded.samples.split.tolist() == ["held_out"]
    assert len(encoded.rows) == encoded.samples.lengths()[0]
