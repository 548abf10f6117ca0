"""HL7 v2 ORU^R01 messages to notes: one note per OBR report, its text from the OBX segments.

A file or request body may hold one message, several, or a batch (``FHS``/``BHS`` ...
``BTS``/``FTS``), with or without MLLP framing, in the character set MSH-18 names (else
UTF-8 or a detected legacy encoding). Per OBR (in order):

- text: the OBX-5 values of type TX, FT or ST, one line per value and per repetition, HL7
  escapes resolved (``\\.br\\`` -> new line, ``\\F\\`` -> ``|``, ...);
- ``note_id``: OBR-3 (filler order number, the accession), else OBR-2, else
  ``<MSH-10>-<n>``;
- ``subject_id``: PID-3 (the first identifier); time: OBR-7, else OBR-22, else MSH-7; kind
  from OBR-24 (RAD, CT, MR, US, ... -> radiology).

The structure is checked before parsing, so a damaged message gets a message naming the
segment: every line must start with a segment id and the field separator (a report line that
lost its OBX prefix, a message cut in two), the file must start with MSH (or a batch
header), batch headers and trailers must pair, an OBX must follow an OBR, and MSH-9 must say
ORU^R01. python-hl7 then parses each message. HL7 escapes are resolved here rather than with
python-hl7's ``unescape``, which logs the whole field (report text, PHI) when it meets an
escape it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from medsight.errors import InputError
from medsight.text.io.decode import decode_text
from medsight.text.io.note import Note, check_note_text
from medsight.text.io.note_time import parse_hl7_time

#: OBX value types that carry report text
TEXT_VALUE_TYPES = ("TX", "FT", "ST")
#: OBR-24 diagnostic service sections that are imaging reports
RADIOLOGY_SECTIONS = ("RAD", "CT", "MR", "NMR", "US", "RX", "NMS", "VUS", "XRC", "OUS", "CUS")

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_BATCH = {"FHS": "FTS", "BHS": "BTS"}
_TRAILERS = {v: k for k, v in _BATCH.items()}


#: HL7 v2 table 0211 (MSH-18 character set) -> Python codec, for the sets notes arrive in
CHARSET_OF_MSH18 = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
}


def notes_from_hl7_bytes(raw: bytes, where: str, charset: str | None = None) -> list[Note]:
    """The notes of HL7 v2 bytes; see `notes_from_hl7`.

    MLLP framing bytes are dropped first. The text is decoded with ``charset`` when the
    sender declared one (an HTTP parameter), else with the character set MSH-18 names
    (``8859/1``, ``UNICODE UTF-8``, ...), else as any note is (`decode_text`).
    """
    raw = raw.replace(b"\x0b", b"").replace(b"\x1c", b"")
    return notes_from_hl7(decode_text(raw, where, charset or _msh18_charset(raw)), where)


def _msh18_charset(raw: bytes) -> str | None:
    """The codec MSH-18 of the first message names (None when absent or not in the table)."""
    start = raw.find(b"MSH")
    if start < 0 or len(raw) < start + 4:
        return None
    end = min(i for i in (raw.find(b"\r", start), raw.find(b"\n", start), len(raw)) if i >= 0)
    fields = raw[start:end].split(raw[start + 3 : start + 4])
    if len(fields) <= 17:
        return None
    repetition = raw[start + 5 : start + 6] or b"~"
    first = fields[17].split(repetition)[0].strip().decode("ascii", "replace").upper()
    return CHARSET_OF_MSH18.get(first)


def notes_from_hl7(text: str, where: str) -> list[Note]:
    """One note per OBR report with text in the ORU^R01 messages of ``text``.

    Args:
        text: the messages, segments separated by ``\\r``, ``\\n`` or ``\\r\\n``.
        where: names the source in messages.

    Raises:
        InputError: a garbled or unbalanced message (names the segment by number and id),
            a message other than ORU^R01, a message without report text, a report over the
            size limit. No message quotes a field's value, except the message type.
    """
    segments = [
        line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()
    ]
    if not segments:
        raise InputError(f"{where}: empty HL7 message")
    notes: list[Note] = []
    for number, message in enumerate(_messages(segments, where), start=1):
        notes.extend(_message_notes(message, f"{where}: message {number}"))
    seen: set[str] = set()
    for note in notes:
        if note.note_id in seen:
            raise InputError(f"{note.source}: two reports have the same order number")
        seen.add(note.note_id)
    return notes


def _messages(segments: list[str], where: str) -> Iterator[list[tuple[int, str]]]:
    """Each message's segments (numbered from 1 across the input), structure checked."""
    first = segments[0].lstrip()
    head = first[:3]
    if head not in ("MSH", "FHS", "BHS") or len(first) < 8:
        raise InputError(f"{where}: not an HL7 v2 message (the first segment is not MSH)")
    separator = first[3]
    open_batches: list[str] = []
    message: list[tuple[int, str]] = []
    for number, segment in enumerate(segments, start=1):
        segment = segment.strip()
        sid = segment[:3]
        if not _SEGMENT_ID.fullmatch(sid) or (len(segment) > 3 and segment[3] != separator):
            raise InputError(
                f"{where}: segment {number} is not an HL7 segment (no segment id and field "
                "separator): the message is garbled or a report line lost its OBX prefix"
            )
        if sid in _BATCH:
            if message:
                yield message
                message = []
            open_batches.append(sid)
            continue
        if sid in _TRAILERS:
            if message:
                yield message
                message = []
            if not open_batches or open_batches[-1] != _TRAILERS[sid]:
                raise InputError(
                    f"{where}: segment {number} ({sid}) closes a {_TRAILERS[sid]} that was "
                    "not opened (unbalanced batch segments)"
                )
            open_batches.pop()
            continue
        if sid == "MSH":
            if message:
                yield message
            message = [(number, segment)]
            continue
        if not message:
            raise InputError(
                f"{where}: segment {number} ({sid}) comes before any MSH (unbalanced segments)"
            )
        message.append((number, segment))
    if message:
        yield message
    trailers_missing = [head for head in open_batches if head != "FHS"]
    if trailers_missing:
        raise InputError(
            f"{where}: {trailers_missing[-1]} without its {_BATCH[trailers_missing[-1]]} "
            "(unbalanced batch segments: the batch was cut short)"
        )


def _message_notes(message: list[tuple[int, str]], where: str) -> list[Note]:
    import hl7

    msh_text = message[0][1]
    encoding = msh_text[4:8]
    if len(encoding) < 4 or len(set(msh_text[3:8])) < 5:
        raise InputError(f"{where}: MSH-2 does not hold the four encoding characters")
    try:
        parsed = hl7.parse("\r".join(segment for _, segment in message))
    except Exception:  # python-hl7 quotes the offending line in its messages: never pass them on
        raise InputError(f"{where}: python-hl7 cannot parse this message") from None
    segments = list(parsed)
    msh = segments[0]
    message_type = _field(msh, 9)
    kind_and_trigger = message_type.split(encoding[0])
    if kind_and_trigger[:2] != ["ORU", "R01"]:
        shown = re.sub(r"[^A-Z0-9^_]", "", message_type)[:20] or "empty"
        raise InputError(f"{where}: MSH-9 is {shown}, not ORU^R01 (an observation result)")
    control_id = _field(msh, 10).strip() or "hl7"
    separator, repetition = msh_text[3], encoding[1]
    subject: str | None = None
    reports: list[dict[str, Any]] = []
    for (number, _), segment in zip(message, segments, strict=True):
        sid = str(segment[0])
        here = f"{where}: segment {number} ({sid})"
        if sid == "PID":
            subject = _component(_field(segment, 3), encoding) or subject
        elif sid == "OBR":
            reports.append({"obr": segment, "where": here, "lines": [], "subject": subject})
        elif sid == "OBX":
            if not reports:
                raise InputError(f"{here}: an observation before any OBR (unbalanced segments)")
            if _field(segment, 2).strip().upper() in TEXT_VALUE_TYPES:
                for value in _field(segment, 5).split(repetition):
                    reports[-1]["lines"].append(_unescape(value, separator, encoding))
    if not reports:
        raise InputError(f"{where}: no OBR segment (no report in this ORU^R01)")
    notes: list[Note] = []
    for index, report in enumerate(reports, start=1):
        if not report["lines"]:
            continue
        obr = report["obr"]
        note_id = (
            _component(_field(obr, 3), encoding)
            or _component(_field(obr, 2), encoding)
            or f"{control_id}-{index}"
        )
        when = _field(obr, 7) or _field(obr, 22) or _field(msh, 7)
        section = _component(_field(obr, 24), encoding).upper()
        text = check_note_text("\n".join(report["lines"]).strip("\n"), report["where"])
        notes.append(
            Note(
                note_id=note_id,
                text=text,
                subject_id=report["subject"],
                time=parse_hl7_time(_component(when, encoding), f"{report['where']}, time"),
                kind="radiology" if section in RADIOLOGY_SECTIONS else None,
                source=report["where"],
            )
        )
    if not notes:
        raise InputError(f"{where}: no report text (no OBX of type TX, FT or ST after an OBR)")
    return notes


def _field(segment: Any, index: int) -> str:
    """Field ``index`` of a parsed segment as sent (``""`` when the segment is shorter)."""
    try:
        return str(segment[index])
    except IndexError:
        return ""


def _component(value: str, encoding: str) -> str:
    """The first component of a field's first repetition."""
    return value.split(encoding[1])[0].split(encoding[0])[0].strip()


def _unescape(value: str, separator: str, encoding: str) -> str:
    """A TX/FT value with HL7 escape sequences resolved (HL7 v2 chapter 2.7).

    Formatting commands become plain-text layout (``.br`` a new line, ``.sp N`` N new lines,
    ``.sk N`` N spaces); highlighting, character-set switches and unknown sequences are
    dropped; ``Xhh..`` becomes the bytes it spells (read as Latin-1).
    """
    component, repetition, escape, subcomponent = encoding[0], encoding[1], encoding[2], encoding[3]
    if escape not in value:
        return value
    literal = {
        "F": separator,
        "S": component,
        "T": subcomponent,
        "R": repetition,
        "E": escape,
        ".br": "\n",
        ".ce": "\n",
    }
    out: list[str] = []
    rest = value
    while rest:
        start = rest.find(escape)
        if start < 0:
            out.append(rest)
            break
        end = rest.find(escape, start + 1)
        if end < 0:  # an unterminated escape: keep the text as sent
            out.append(rest)
            break
        out.append(rest[:start])
        out.append(_escape_value(rest[start + 1 : end], literal))
        rest = rest[end + 1 :]
    return "".join(out)


def _escape_value(sequence: str, literal: dict[str, str]) -> str:
    if sequence in literal:
        return literal[sequence]
    count_match = re.fullmatch(r"\.(sp|sk)\s*([+-]?\d*)", sequence)
    if count_match:
        count = max(int(count_match.group(2) or 1), 0)
        return ("\n" if count_match.group(1) == "sp" else " ") * count
    if sequence.startswith("X") and re.fullmatch(r"X(?:[0-9A-Fa-f]{2})+", sequence):
        return bytes.fromhex(sequence[1:]).decode("latin-1")
    return ""
