"""decode_text: the encodings a note arrives in, and the bytes it refuses."""

from __future__ import annotations

import codecs
import os

import pytest

from medsight.errors import InputError
from medsight.text.io.decode import decode_text

NOTE = "Impression: no pleural effusion.\r\nNaïve 5 µg – “stable”.\r\nEnd."
EXPECTED = "Impression: no pleural effusion.\nNaïve 5 µg – “stable”.\nEnd."


@pytest.mark.parametrize(
    "raw",
    [
        NOTE.encode("utf-8"),
        codecs.BOM_UTF8 + NOTE.encode("utf-8"),
        codecs.BOM_UTF16_LE + NOTE.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + NOTE.encode("utf-16-be"),
        NOTE.encode("cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "cp1252-detected"],
)
def test_each_encoding_gives_the_same_text_with_lf_line_ends(raw: bytes) -> None:
    assert decode_text(raw, "n.txt") == EXPECTED


def test_a_declared_charset_is_used() -> None:
    raw = "Größe 5 mm".encode("latin-1")
    assert decode_text(raw, "body", "iso-8859-1") == "Größe 5 mm"
    with pytest.raises(InputError, match="body: not valid utf-8"):
        decode_text(raw, "body", "utf-8")
    with pytest.raises(InputError, match="unknown charset"):
        decode_text(raw, "body", "no-such-charset")


def test_lone_carriage_returns_become_new_lines() -> None:
    assert decode_text(b"a\rb\r\nc", "x") == "a\nb\nc"


@pytest.mark.parametrize(
    "raw",
    [
        b"%PDF-1.4\n\x00\x01\x02binary",
        bytes(range(256)) * 4,
        "no BOM".encode("utf-16-le"),
        b"report text \x07 with a bell",
    ],
    ids=["nul", "all-bytes", "utf16-without-bom", "control-char"],
)
def test_binary_is_refused_with_an_offset_not_the_text(raw: bytes) -> None:
    with pytest.raises(InputError, match=r"^scan\.bin: binary content") as err:
        decode_text(raw, "scan.bin")
    assert "report" not in str(err.value) and "PDF" not in str(err.value)


def test_undetectable_legacy_bytes_are_refused() -> None:
    raw = bytes(b for b in os.urandom(4000) if b >= 0x80)[:400]
    with pytest.raises(InputError, match="not UTF-8 .* cannot be told .* save it as UTF-8"):
        decode_text(raw, "x.txt")
