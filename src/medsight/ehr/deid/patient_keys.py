"""Keyed per-patient values: a pseudonym, a pseudonymous subject id and a date offset.

All three are HMAC-SHA256 of the patient's original identifier under the service's secret
key, each with its own purpose string so they do not reveal one another. The same patient
and key always give the same values (a patient's records shift alike across requests);
without the key none of them can be tied back to the identifier, and another key gives
unrelated values.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsight.keyed_digest import keyed_digest
from medsight.patient_date_offset import offset_days

MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class PatientKeys:
    """What one patient's record is de-identified with.

    Attributes:
        pseudonym: 20 upper-case hex digits (80 bits of the keyed hash).
        subject_id: the MEDS ``subject_id`` the de-identified rows carry (under 2**48, so
            it survives JSON readers that hold numbers as doubles).
        offset_days: added to every date and time of the patient.
    """

    pseudonym: str
    subject_id: int
    offset_days: int


def patient_keys(key: str, identifier: str) -> PatientKeys:
    """The keyed values of the patient whose original identifier is ``identifier``.

    Raises:
        ValueError: ``key`` is shorter than 16 characters (a configuration error).
    """
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"the de-identification key must have at least {MIN_KEY_CHARS} characters")
    identifier = identifier.strip()
    return PatientKeys(
        pseudonym=keyed_digest(key, "ehr-pseudonym", identifier).hex()[:20].upper(),
        subject_id=int.from_bytes(keyed_digest(key, "ehr-subject-id", identifier)[:6], "big"),
        offset_days=offset_days(key, identifier),
    )
