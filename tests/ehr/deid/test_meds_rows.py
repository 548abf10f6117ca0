"""De-identifying one patient's MEDS rows sent as JSON."""

from __future__ import annotations

import pytest
from deid_canary_bundle import KEY, NOTE

from medsight.ehr.deid import deidentify_meds_rows
from medsight.errors import InputError


def rows(subject: object = 42) -> dict:
    return {
        "events": [
            {"subject_id": subject, "time": None, "code": "SEX//F"},
            {"subject_id": subject, "time": "1951-06-13", "code": "MEDS_BIRTH"},
            {
                "subject_id": subject,
                "time": "2020-01-20T10:15:00+01:00",
                "code": "LOINC//4548-4",
                "numeric_value": 8.4,
                "text_value": NOTE,
                "note": NOTE,
            },
        ]
    }


def test_text_is_dropped_times_move_and_the_subject_is_replaced() -> None:
    clean = deidentify_meds_rows(rows(), KEY)
    d = clean.offset_days
    assert 30 <= abs(d) <= 365
    events = clean.record["events"]
    assert all(set(e) == {"subject_id", "time", "code", "numeric_value"} for e in events)
    assert {e["subject_id"] for e in events} == {clean.subject_id} and clean.subject_id != 42
    assert events[0]["time"] is None
    # zoned times become naive UTC, then move by whole days
    assert events[2]["time"][11:] == "09:15:00"
    import datetime as dt

    moved = dt.date(2020, 1, 20) + dt.timedelta(days=d)
    assert events[2]["time"][:10] == moved.isoformat()
    born = dt.date(1951, 6, 13) + dt.timedelta(days=d)
    assert events[1]["time"] == f"{born.isoformat()}T00:00:00"
    assert NOTE not in str(clean.record)


def test_rows_without_a_subject_are_keyed_on_their_content() -> None:
    a = rows(None)
    for e in a["events"]:
        del e["subject_id"]
    b = rows(None)
    b["events"][2]["numeric_value"] = 9.9
    ka, kb = deidentify_meds_rows(a, KEY), deidentify_meds_rows(b, KEY)
    assert ka.subject_id != kb.subject_id
    assert deidentify_meds_rows(a, KEY).offset_days == ka.offset_days


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "'events' list"),
        ({"events": []}, "empty"),
        ({"events": [3]}, "event 0: not a JSON object"),
        (
            {"events": [{"subject_id": 1, "code": "A//1"}, {"subject_id": 2, "code": "A//1"}]},
            "2 subjects",
        ),
        ({"events": [{"code": "no-vocabulary"}]}, "event 0: code"),
        ({"events": [{"code": "A//1", "time": "13/06/1951"}]}, "event 0: time"),
        ({"events": [{"code": "A//1", "time": 1951}]}, "event 0: time"),
        ({"events": [{"code": "A//1", "numeric_value": "8"}]}, "numeric_value"),
        ({"events": [{"code": "A//1", "numeric_value": float("inf")}]}, "not finite"),
        ({"events": [{"code": "A//1", "subject_id": [1]}]}, "subject_id"),
    ],
)
def test_bad_rows_are_refused_by_position(body: object, says: str) -> None:
    with pytest.raises(InputError, match=says):
        deidentify_meds_rows(body, KEY)
