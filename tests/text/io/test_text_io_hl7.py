"""HL7 v2 ORU^R01 to notes: OBX text per OBR report; garbled or unbalanced messages refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.io.hl7_oru import notes_from_hl7, notes_from_hl7_bytes
from medsight.text.io.read_notes import read_notes

MSH = "MSH|^~\\&|RIS|HOSP|EHR|HOSP|20240131081500+0100||ORU^R01|MSG001|P|2.5"
PID = "PID|1||MRN4242^^^HOSP^MR||Canary^Jonathan"
OBR1 = "OBR|1|PL1|ACC9^RIS|71250^CT CHEST|||20240131080000|||||||||||||||||CT"
OBX1 = "OBX|1|TX|||FINDINGS: 5 mm nodule\\.br\\in the right upper lobe.~No pleural effusion."
OBX2 = "OBX|2|FT|||IMPRESSION: stable \\T\\ small\\F\\ see prior \\E\\ \\X41\\\\H\\."
OBX_NUM = "OBX|3|NM|||5|mm"
OBR2 = "OBR|2|PL2||XR CHEST"
OBX3 = "OBX|1|TX|||Heart size normal."
MESSAGE = "\r".join([MSH, PID, OBR1, OBX1, OBX2, OBX_NUM, OBR2, OBX3])


def test_each_obr_report_becomes_a_note_with_lines_and_escapes_resolved() -> None:
    first, second = notes_from_hl7(MESSAGE, "m.hl7")
    assert first.text == (
        "FINDINGS: 5 mm nodule\nin the right upper lobe.\nNo pleural effusion.\n"
        "IMPRESSION: stable & small| see prior \\ A."
    )
    assert (first.note_id, first.subject_id, first.kind) == ("ACC9", "MRN4242", "radiology")
    assert first.time == dt.datetime(2024, 1, 31, 8, 0)
    # no filler number: the placer's; no OBR-7: MSH-7 in UTC
    assert (second.note_id, second.text, second.kind) == ("PL2", "Heart size normal.", None)
    assert second.time == dt.datetime(2024, 1, 31, 7, 15)
    assert first.source == "m.hl7: message 1: segment 3 (OBR)"


def test_mllp_framing_crlf_and_batches_are_read(tmp_path: Path) -> None:
    second = MESSAGE.replace("MSG001", "MSG002").replace("ACC9", "ACC10").replace("PL2", "PL3")
    batch = "\r\n".join(["BHS|^~\\&|RIS", MESSAGE, second, "BTS|2"])
    path = tmp_path / "batch.hl7"
    path.write_bytes(b"\x0b" + batch.encode() + b"\x1c\r")
    notes = list(read_notes(path))
    assert [n.note_id for n in notes] == ["ACC9", "PL2", "ACC10", "PL3"]
    assert notes[2].source.endswith("message 2: segment 12 (OBR)")


def test_msh18_names_the_character_set() -> None:
    msh = MSH + "||||||8859/2"  # MSH-18
    body = "\r".join([msh, OBR2, "OBX|1|TX|||Guzek płuca 5 mm, Łódź"]).encode("iso8859-2")
    [note] = notes_from_hl7_bytes(body, "body")
    assert note.text == "Guzek płuca 5 mm, Łódź"
    utf8 = "\r".join([MSH + "||||||UNICODE UTF-8", OBR2, "OBX|1|TX|||Größe"]).encode("latin-1")
    with pytest.raises(InputError, match="not valid utf-8"):
        notes_from_hl7_bytes(utf8, "body")


def test_a_latin1_message_decodes_with_its_declared_charset() -> None:
    body = "\r".join([MSH, OBR2, "OBX|1|TX|||Größe 5 mm"]).encode("latin-1")
    [note] = notes_from_hl7_bytes(body, "body", "iso-8859-1")
    assert note.text == "Größe 5 mm"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\r".join([MSH, PID, OBX1, OBR1]), r"segment 3 \(OBX\): an observation before any OBR"),
        ("\r".join([PID, MSH, OBR1, OBX1]), "not an HL7 v2 message"),
        (
            "\r".join([MSH, PID, OBR1, OBX1, "in the left lung, Jonathan Canary said", OBX2]),
            "segment 5 is not an HL7 segment .* lost its OBX prefix",
        ),
        ("\r".join(["BHS|^~\\&|RIS", MESSAGE]), "BHS without its BTS"),
        ("\r".join([MESSAGE, "BTS|1"]), r"segment 9 \(BTS\) closes a BHS that was not opened"),
        ("\r".join([MSH.replace("ORU^R01", "ADT^A01"), PID]), "MSH-9 is ADT\\^A01, not ORU\\^R01"),
        ("\r".join([MSH, PID]), "no OBR segment"),
        ("\r".join([MSH, PID, OBR1, OBX_NUM]), "no report text"),
        ("\r".join([MSH.replace("^~\\&", "^^"), PID, OBR1, OBX1]), "MSH-2 does not hold"),
        (
            "\r".join([MSH, OBR1.replace("20240131080000", "Canary"), OBX1]),
            "segment 2 .*not an HL7 date-time",
        ),
        ("\r".join([MSH, OBR1, OBX1, OBR1, OBX3]), "two reports have the same order number"),
        ("", "empty HL7 message"),
    ],
    ids=[
        "obx-first",
        "pid-first",
        "wrapped-line",
        "no-bts",
        "stray-bts",
        "adt",
        "no-obr",
        "no-text",
        "encoding",
        "bad-time",
        "dup",
        "empty",
    ],
)
def test_garbled_or_unbalanced_messages_get_a_line_naming_the_segment(
    text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as err:
        notes_from_hl7(text, "m.hl7")
    shown = str(err.value)
    assert "Canary" not in shown and "MRN4242" not in shown and "nodule" not in shown
    assert shown.startswith("m.hl7: ")


def test_an_oversized_report_is_refused(small_note_limit: int) -> None:
    text = "\r".join([MSH, OBR2, "OBX|1|TX|||" + "w" * (small_note_limit + 1)])
    with pytest.raises(InputError, match=r"segment 2 \(OBR\): 101 characters is over the limit"):
        notes_from_hl7(text, "m.hl7")


def test_unknown_escapes_are_dropped_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "\r".join([MSH, OBR2, "OBX|1|TX|||Canary \\Zfoo\\text \\Cxxxx\\here"])
    [note] = notes_from_hl7(text, "m.hl7")
    assert note.text == "Canary text here"
    assert "Canary" not in caplog.text
