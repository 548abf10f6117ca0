"""Bytes to note text: UTF-8 (with or without a byte-order mark), UTF-16/32 with a BOM,
otherwise a legacy code page detected by ``charset-normalizer`` when it is confident; binary
refused.

Detection on a few hundred bytes is a guess: ``charset-normalizer`` often ranks Central
European cp1250 (or a CJK code page, for a mostly-ASCII note with one degree sign) above
Western cp1252 at the same "chaos" score. Western cp1252 is the commonest legacy encoding
of clinical text exported from EHRs, so when it is among the best-scoring candidates it is
chosen; any other guess must also look like a language (coherence), otherwise the bytes are
refused with a request to save the note as UTF-8. Line ends become ``\\n``.
"""

from __future__ import annotations

import codecs
import re

from medsight.errors import InputError

#: byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

#: the detected encoding is used only when its decoded text looks this clean ...
MAX_CHAOS_PERCENT = 10.0
#: ... and, unless it is Western cp1252, this much like a known language
MIN_COHERENCE_PERCENT = 10.0

#: control characters no text note holds (tab, line feed, vertical tab, form feed and
#: carriage return are kept); their presence means binary data or a wrong decoding
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def decode_text(raw: bytes, where: str, charset: str | None = None) -> str:
    """Decode a note's bytes to text with ``\\n`` line ends.

    Args:
        raw: the bytes as stored or sent.
        where: names the source in messages (a file, ``request body``).
        charset: the encoding the sender declared (an HTTP ``charset`` parameter, an
            attachment's ``contentType``); used as given, a BOM still wins.

    Returns:
        The text, byte-order mark removed, ``\\r\\n`` and lone ``\\r`` turned into ``\\n``.

    Raises:
        InputError: binary content (NUL or other control bytes), bytes that are not in the
            declared charset, an unknown charset, or a legacy encoding that cannot be told
            with confidence. Messages give offsets, never the text.
    """
    text = _decode(raw, where, charset)
    bad = _CONTROL.search(text)
    if bad is not None:
        raise InputError(
            f"{where}: binary content (control character U+{ord(bad.group()):04X} at "
            f"character {bad.start()}): not a text note"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(raw: bytes, where: str, charset: str | None) -> str:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _strict(raw[len(bom) :], encoding, where)
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise InputError(f"{where}: unknown charset {charset[:40]!r}") from None
        return _strict(raw, charset, where).removeprefix("\ufeff")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"{where}: binary content (NUL byte at offset {nul}): not a text note "
            "(UTF-16 needs a byte-order mark)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    detected = detect_encoding(raw)
    if detected is None:
        raise InputError(
            f"{where}: not UTF-8 (invalid byte at offset {first_bad}) and its encoding cannot "
            "be told with confidence: save it as UTF-8"
        )
    return _strict(raw, detected, where)


def _strict(raw: bytes, encoding: str, where: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where}: not valid {encoding} (invalid bytes at offset {exc.start})"
        ) from None


def detect_encoding(raw: bytes) -> str | None:
    """The legacy encoding of non-UTF-8 bytes, or None when no guess passes the bar.

    See the module docstring for the bar (cp1252 preferred among equally clean guesses).
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw))
    if not matches:
        return None
    cleanest = min(match.percent_chaos for match in matches)
    if cleanest > MAX_CHAOS_PERCENT:
        return None
    tier = [match for match in matches if match.percent_chaos <= cleanest + 1.0]
    if any("cp1252" in match.could_be_from_charset for match in tier):
        return "cp1252"
    best = matches[0]
    if best.percent_chaos <= MAX_CHAOS_PERCENT and best.percent_coherence >= MIN_COHERENCE_PERCENT:
        return str(best.encoding)
    return None
