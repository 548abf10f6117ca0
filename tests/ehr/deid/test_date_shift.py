"""Shifting FHIR and MEDS times by whole days."""

from __future__ import annotations

import pytest

from medsight.ehr.deid.date_shift import shift_fhir_date, shift_meds_time


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("2020-02-28", 1, "2020-02-29"),
        ("2020-12-31T23:59:59Z", 1, "2021-01-01T23:59:59Z"),
        ("2020-03-01T10:00:00.5+05:30", -1, "2020-02-29T10:00:00.5+05:30"),
        ("2020-03-01T10:00", 30, "2020-03-31T10:00"),
        ("2020", 30, None),
        ("2020-04", 30, None),
        ("2020-02-30", 1, None),
        ("20200101", 1, None),
        ("2020-01-01 and more", 1, None),
    ],
)
def test_fhir_values_move_by_days_and_keep_their_form(
    value: str, days: int, expected: str | None
) -> None:
    assert shift_fhir_date(value, days) == expected


def test_meds_times_become_naive_utc() -> None:
    assert shift_meds_time("2020-01-01T00:30:00+01:00", 2) == "2020-01-02T23:30:00"
    assert shift_meds_time("2020-01-01", -1) == "2019-12-31T00:00:00"
    assert shift_meds_time("not a time", 1) is None
