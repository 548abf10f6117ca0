"""Keyed surrogates: what a masked span becomes in ``surrogate`` mode.

Every choice is drawn from HMAC-SHA256 of (patient, original) under the user's key
(`medsight.keyed_digest`, purpose ``text-surrogate``), so the same name of the same patient
becomes the same fake name in every note and run, another patient's "Smith" becomes
something else, and without the key a surrogate says nothing about its original. Names keep
their shape word by word (first names stay first names, initials stay initials, capitals stay
capitals); dates move by the patient's date offset in the same format; identifiers, phone
and fax numbers keep their shape (digits stay digits, letters letters, punctuation kept);
ages over 89 become "90+".
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

from medsight.keyed_digest import keyed_digest
from medsight.text.deid.date_formats import shift_date
from medsight.text.deid.gazetteer import gazetteer

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
#: words of an address or hospital name that are kept (they say what kind of place it is)
_KEEP = frozenset(
    """Street St Avenue Ave Road Rd Boulevard Blvd Drive Dr Lane Ln Court Ct Place Pl Way
    Terrace Ter Circle Cir Parkway Pkwy Highway Hwy Square Sq Trail Trl Route Rte Pike Alley
    Plaza Loop Crossing Row Path Walk Apt Apartment Unit Suite Ste Room Rm Floor Fl North
    South East West N S E W NE NW SE SW PO P O Box Post Office Hospital Hospitals Medical
    Center Centre Clinic Clinics Health System Healthcare Care Infirmary Memorial General
    Regional University of the and for Institute Rehabilitation Rehab Nursing Home Facility
    Surgical Surgery Cancer Heart Group Associates Hospice Sanatorium Urgent Family Practice
    Physicians Pediatrics Assisted Living Manor Partners Saint Mount Mt
    Children's Women's Community County
    State Zip zip""".split()  # noqa: SIM905
)
_STATE_CODES = sorted(gazetteer().state_abbreviations - {"DC", "PR"})


class Surrogates:
    """Makes the replacements of one note.

    Args:
        key: the de-identification key.
        scope: the patient (or, without one, the note) the choices are keyed by.
        offset_days: how far this patient's dates move.
        avoid: lower-cased words of the note's own PHI: a surrogate never reuses one, so an
            output never shows an original of the same note by chance.
    """

    def __init__(self, key: str, scope: str, offset_days: int, avoid: frozenset[str]) -> None:
        self.key = key
        self.scope = scope
        self.offset_days = offset_days
        self.avoid = avoid

    def replace(self, phi_type: str, original: str) -> str:
        """The surrogate for ``original`` (a span's text) of type ``phi_type``."""
        if phi_type == "NAME":
            # a merged span may hold more than a name (a tagger's span over a date): digits too
            named = self._words(original, self._name_word)
            return re.sub(r"\d+", lambda m: self._shape(m.group(0), "NAME"), named)
        if phi_type == "DATE":
            return shift_date(original, self.offset_days) or self._shape(original, "DATE")
        if phi_type == "AGE":
            return "90+"
        if phi_type == "EMAIL":
            local = self._letters(
                original.split("@")[0], "EMAIL", max(len(original.split("@")[0]), 4)
            )
            return f"{local}@example.org"
        if phi_type == "URL":
            scheme = re.match(r"(?i)(?:https?|ftp)://", original)
            path = self._letters(original, "URL", 8)
            return f"{scheme.group(0) if scheme else ''}www.example.org/{path}"
        if phi_type in ("ID", "PHONE", "FAX"):
            return self._shape(original, phi_type)
        if phi_type == "LOCATION":
            return self._place(original)
        if phi_type in ("ADDRESS", "HOSPITAL"):
            return self._address(original, phi_type)
        return f"[{phi_type}]"

    def _draw(self, purpose: str, value: str, pool: Sequence[str]) -> str:
        """A keyed choice from ``pool``, never ``value`` itself nor a word of ``avoid``."""
        digest = keyed_digest(self.key, "text-surrogate", f"{self.scope}\x00{purpose}\x00{value}")
        start = int.from_bytes(digest[:8], "big") % len(pool)
        for step in range(len(pool)):
            choice = pool[(start + step * 7919) % len(pool)]
            if choice.lower() != value.lower() and choice.lower() not in self.avoid:
                return choice
        return pool[start]

    def _stream(self, purpose: str, value: str, length: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < length:
            out += keyed_digest(
                self.key, "text-surrogate", f"{self.scope}\x00{purpose}\x00{counter}\x00{value}"
            )
            counter += 1
        return out[:length]

    def _shape(self, original: str, purpose: str) -> str:
        """Same shape: each digit a keyed digit, each letter a keyed letter of its case."""
        for attempt in range(4):
            stream = self._stream(f"{purpose}{attempt}", original, len(original))
            out = []
            for position, (char, byte) in enumerate(zip(original, stream, strict=True)):
                if char.isdigit():
                    # a leading non-zero digit stays non-zero: "42 Maple St" never "01 ..."
                    lowest = 1 if position == 0 and char != "0" else 0
                    out.append(str(lowest + byte % (10 - lowest)))
                elif char.isalpha() and char.isascii():
                    letter = string.ascii_uppercase[byte % 26]
                    out.append(letter if char.isupper() else letter.lower())
                else:
                    out.append(char)
            result = "".join(out)
            if result != original:
                return result
        return result

    def _letters(self, value: str, purpose: str, length: int) -> str:
        stream = self._stream(purpose, value, length)
        return "".join(string.ascii_lowercase[byte % 26] for byte in stream)

    def _words(self, original: str, one: Callable[[str], str]) -> str:
        return _WORD.sub(lambda match: _cased(match.group(0), one(match.group(0))), original)

    def _name_word(self, word: str) -> str:
        places = gazetteer()
        bare = word[:1] + word[1:].lower() if word.isupper() else word
        if len(word) == 1:
            return self._draw("initial", word.upper(), string.ascii_uppercase)
        if bare in places.first_names and bare not in places.last_names:
            return self._draw("first", bare, places.surrogate_first)
        return self._draw("last", bare, places.surrogate_last)

    def _place(self, original: str) -> str:
        places = gazetteer()
        stripped = original.strip()
        if stripped in places.state_abbreviations:
            return self._draw("state-code", stripped, _STATE_CODES)
        if stripped in places.states:
            return self._draw("state", stripped, sorted(places.states))
        return self._draw("city", stripped, places.surrogate_cities)

    def _address(self, original: str, phi_type: str) -> str:
        places = gazetteer()
        after_comma = False
        out = []
        for piece in re.split(r"(\s+|,)", original):
            if piece == ",":
                after_comma = True
            if not piece or piece.isspace() or piece == ",":
                out.append(piece)
                continue
            core = piece.rstrip(".,")
            tail = piece[len(core) :]
            possessive = ""
            for ending in ("'s", "’s"):
                if core.endswith(ending):
                    core, possessive = core[: -len(ending)], ending
            if any(char.isdigit() for char in core):
                out.append(self._shape(core, phi_type) + possessive + tail)
            elif core in places.state_abbreviations:
                out.append(self._draw("state-code", core, _STATE_CODES) + possessive + tail)
            elif core in _KEEP or not core[:1].isupper():
                out.append(piece)
            elif phi_type == "ADDRESS" and after_comma:
                out.append(self._draw("city", core, places.surrogate_cities) + possessive + tail)
            elif phi_type == "HOSPITAL" and possessive:
                out.append(self._draw("first", core, places.surrogate_first) + possessive + tail)
            else:
                out.append(self._draw("street", core, places.street_names) + possessive + tail)
        return "".join(out)


def _cased(original: str, surrogate: str) -> str:
    """``surrogate`` written in ``original``'s case (JOHN -> PETER, john -> peter)."""
    if original.isupper() and len(original) > 1:
        return surrogate.upper()
    if original.islower():
        return surrogate.lower()
    return surrogate
