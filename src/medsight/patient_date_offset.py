"""A patient's keyed date offset, shared by every modality that moves a patient's dates.

EHR records and free-text notes of the same patient must move by the same number of days
under the same key, so a de-identified note still lines up with the de-identified record.
Bottom layer: imports only `medsight.keyed_digest`.
"""

from __future__ import annotations

from medsight.keyed_digest import keyed_digest

#: whole days a patient's dates move: |offset| in [MIN, MAX], forwards or backwards
OFFSET_MIN_DAYS = 30
OFFSET_MAX_DAYS = 365


def offset_days(key: str, identifier: str) -> int:
    """The patient's date offset: in [-365, -30] or [30, 365] days, never near zero.

    ``identifier`` is the patient's original identifier (stripped of surrounding spaces).
    """
    span = OFFSET_MAX_DAYS - OFFSET_MIN_DAYS + 1
    draw = int.from_bytes(keyed_digest(key, "ehr-date-shift", identifier.strip())[:8], "big")
    magnitude = OFFSET_MIN_DAYS + (draw >> 1) % span
    return magnitude if draw & 1 else -magnitude
