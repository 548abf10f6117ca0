"""Keyed pseudonyms: HMAC-SHA256 under the user's key, so output links only under that key.

The same input and key always give the same output (studies stay linked across files, series
and runs); without the key an output cannot be tied back to its input, and a different key
gives unrelated outputs. Each use has its own ``purpose`` string so that, say, a UID and a
Patient ID with the same text do not hash alike.
"""

from __future__ import annotations

from medsight.keyed_digest import keyed_digest

UID_ROOT = "2.25."  # UUID-derived OIDs (ITU-T X.667), no registered root needed
DATE_SHIFT_MIN_DAYS = 365
DATE_SHIFT_MAX_DAYS = 3652


def hashed_uid(uid: str, key: str) -> str:
    """Replacement UID for ``uid``: ``2.25.<decimal>`` of a version-8 UUID from the HMAC.

    128 bits print as at most 39 digits, so the result is at most 44 characters (UIDs may be
    64). Padding (NUL, spaces) around ``uid`` is ignored.
    """
    digest = keyed_digest(key, "uid", uid.strip(" \x00"))
    value = int.from_bytes(digest[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # UUID version 8 (custom, RFC 9562)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{UID_ROOT}{value}"


def pseudonym(value: str, key: str, purpose: str, length: int = 20) -> str:
    """A hexadecimal pseudonym of ``value`` (``length`` hex digits, upper case)."""
    return keyed_digest(key, purpose, value.strip()).hex()[:length].upper()


def date_offset_days(patient_id: str, key: str) -> int:
    """Days to add to every date of this patient: between -3652 and -365 (1 to 10 years back).

    Derived from the keyed hash of the Patient ID, so all studies of a patient shift alike and
    intervals between them are kept; files without a Patient ID share one offset.
    """
    span = DATE_SHIFT_MAX_DAYS - DATE_SHIFT_MIN_DAYS + 1
    draw = int.from_bytes(keyed_digest(key, "date-shift", patient_id.strip())[:8], "big")
    return -(DATE_SHIFT_MIN_DAYS + draw % span)


def key_fingerprint(key: str) -> str:
    """A short public identifier of ``key``: tells whether two runs used the same key."""
    return keyed_digest(key, "key-fingerprint", "")[:6].hex()
