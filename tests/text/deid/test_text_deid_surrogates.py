"""Surrogates: consistent within a patient, different across patients, dates moved by the
patient's keyed offset (the EHR side's) in the same format, spans in input offsets."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from conftest import KEY
from medsight.ehr.deid.patient_keys import patient_keys
from medsight.patient_date_offset import offset_days
from medsight.text.deid.deidentify import deidentify_text

NOTE_A = "Dr. Ingrid Halvorsen saw Mr. Tobias Wainwright. Wainwright's wife Odile called."
NOTE_B = "Follow-up: Mr. Tobias Wainwright, seen with Dr. Halvorsen. His wife Odile drove him."


def test_same_name_same_surrogate_within_a_patient_across_notes() -> None:
    a = deidentify_text(NOTE_A, key=KEY, patient="P-1").text
    b = deidentify_text(NOTE_B, key=KEY, patient="P-1").text
    for name in ("Ingrid", "Halvorsen", "Tobias", "Wainwright", "Odile"):
        assert name not in a and name not in b
    tobias, wainwright = re.findall(r"Mr\. (\w+) (\w+)\.", a)[0]
    assert a.count(wainwright) == 2 and f"Mr. {tobias} {wainwright}," in b
    halvorsen = re.findall(r"Dr\. \w+ (\w+) saw", a)[0]
    assert f"Dr. {halvorsen}." in b
    odile = re.findall(r"wife (\w+) called", a)[0]
    assert f"wife {odile} drove" in b


def test_other_patients_get_other_surrogates() -> None:
    outs = {deidentify_text(NOTE_A, key=KEY, patient=f"P-{i}").text for i in range(6)}
    assert len(outs) == 6  # six patients, six different de-identified notes
    assert (
        deidentify_text(NOTE_A, key=KEY + "x", patient="P-1").text
        != deidentify_text(NOTE_A, key=KEY, patient="P-1").text
    )


@pytest.mark.parametrize(
    ("written", "fmt"),
    [
        ("2024-03-01", "%Y-%m-%d"),
        ("03/01/2024", "%m/%d/%Y"),
        ("March 1, 2024", "%B %-d, %Y"),
        ("1 Mar 2024", "%-d %b %Y"),
        ("01-MAR-2024", "%d-%b-%Y"),
    ],
)
def test_dates_move_by_the_patients_offset_in_the_same_format(written: str, fmt: str) -> None:
    result = deidentify_text(f"Admitted {written}.", key=KEY, patient=" MRN-77 ")
    days = offset_days(KEY, "MRN-77")
    assert result.offset_days == days == patient_keys(KEY, "MRN-77").offset_days
    expected = (dt.date(2024, 3, 1) + dt.timedelta(days=days)).strftime(fmt)
    if written.isupper() or "MAR" in written:
        expected = expected.upper()
    assert result.text == f"Admitted {expected}."


def test_short_us_date_keeps_its_shape() -> None:
    result = deidentify_text("Seen 3/1/24.", key=KEY, patient="P")
    moved = dt.date(2024, 3, 1) + dt.timedelta(days=result.offset_days)
    assert result.text == f"Seen {moved.month}/{moved.day}/{moved.year % 100:02d}."


def test_without_a_patient_the_offset_is_keyed_by_the_note() -> None:
    one = deidentify_text("Seen 2024-03-01.", key=KEY, source="note-1")
    assert one.offset_days == offset_days(KEY, "note:note-1")


def test_spans_are_input_offsets_and_rebuild_the_output() -> None:
    text = "Patient Greta Novak (MRN 7654321) seen 11/02/2023 by Dr. Okafor, tel 555-201-8843."
    result = deidentify_text(text, key=KEY, patient="P")
    rebuilt, cursor = [], 0
    for span in result.spans:
        assert span.start >= cursor and span.end <= len(text)
        rebuilt += [text[cursor : span.start], span.replacement]
        cursor = span.end
    assert "".join([*rebuilt, text[cursor:]]) == result.text
    found = {text[s.start : s.end]: s.type for s in result.spans}
    assert found == {
        "Greta Novak": "NAME",
        "7654321": "ID",
        "11/02/2023": "DATE",
        "Okafor": "NAME",
        "555-201-8843": "PHONE",
    }
    assert all(set(s.as_record()) == {"start", "end", "type"} for s in result.spans)


def test_identifiers_keep_their_shape_and_change() -> None:
    text = "MRN: AB-7730021, SSN 123-45-6789, call (617) 555-0142."
    out = deidentify_text(text, key=KEY, patient="P").text
    shape = re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", text))
    assert re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", out)) == shape
    for original in ("AB-7730021", "123-45-6789", "(617) 555-0142"):
        assert original not in out


def test_tag_mode_writes_type_tags() -> None:
    result = deidentify_text("Dr. Okafor, 2024-03-01, MRN 7654321.", key=KEY, mode="tag")
    assert result.text == "Dr. [NAME], [DATE], MRN [ID]."
    assert result.offset_days == 0


def test_extra_spans_from_a_tagger_are_masked_too() -> None:
    text = "Seen with Zork the interpreter."
    assert deidentify_text(text, key=KEY, mode="tag").text == text
    tagged = deidentify_text(text, key=KEY, mode="tag", extra_spans=[(10, 14, "NAME")])
    assert tagged.text == "Seen with [NAME] the interpreter."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"key": "short"}, "16 characters"), ({"key": KEY, "mode": "mask"}, "mode")],
)
def test_bad_arguments_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        deidentify_text("Seen.", **kwargs)  # type: ignore[arg-type]


def test_a_name_span_over_digits_changes_the_digits_too() -> None:
    text = "Seen 11/02/2023 at noon."
    result = deidentify_text(text, key=KEY, patient="P", extra_spans=[(0, 16, "NAME")])
    assert "11/02/2023" not in result.text and "02" not in result.text


@pytest.mark.parametrize(
    ("written", "pattern"),
    [
        ("on the 12th of March.", r"on the [1-9]\d?(st|nd|rd|th) of [A-Z][a-z]+\."),
        ("seen 12 May.", r"seen [1-9]\d? [A-Z][a-z]+\."),
        ("seen 12/13/2024.", r"seen \d\d/\d\d/\d{4}\."),
        ("born in 1931.", r"born in \d{4}\."),
    ],
)
def test_shifted_dates_keep_padding_names_and_the_full_stop(written: str, pattern: str) -> None:
    out = deidentify_text(written, key=KEY, patient="P").text
    assert re.fullmatch(pattern, out), out
    assert out != written  # a year of birth moves too: it can give an age over 89 away
