"""`DeidPolicy`: what a de-identification run does, frozen so a run can be reproduced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from medsight.imaging.io.deid.keyed_hash import key_fingerprint
from medsight.imaging.io.deid.profile_table import PROFILE_EDITION

DatesMode = Literal["keep", "shift", "remove"]
DATES_MODES: tuple[str, ...] = get_args(DatesMode)
MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class DeidPolicy:
    """Options on top of the PS3.15 Basic Application Level Confidentiality Profile.

    Attributes:
        key: secret for the keyed hashes (UIDs, Patient ID pseudonym, date offsets). The same
            key links outputs across runs; keep it as safe as the originals. Never written
            anywhere (not even in ``repr``); `describe` gives its fingerprint instead.
        dates: ``remove`` (default, the Basic Profile: dates emptied, replaced by dummies or
            removed), ``keep`` (Retain Longitudinal Temporal Information with Full Dates
            Option) or ``shift`` (... with Modified Dates Option: DA and DT values moved by a
            per-patient offset of 1-10 years back, TM values kept).
        keep_patient_characteristics: Retain Patient Characteristics Option (PS3.15 E.3.7):
            keep the attributes the table marks K in that column (sex, age, size, weight,
            ethnic group, smoking and pregnancy status, sex neutered). Its C rows (free text
            such as Allergies) are still removed: medsight does not clean free text.
        remove_private: remove every private attribute (default). ``False`` keeps them all,
            unreviewed, which voids the profile's guarantees; use only for private groups you
            have checked.
    """

    key: str = field(repr=False)
    dates: DatesMode = "remove"
    keep_patient_characteristics: bool = False
    remove_private: bool = True

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_CHARS:
            raise ValueError(
                f"the de-identification key must have at least {MIN_KEY_CHARS} characters"
            )
        if self.dates not in DATES_MODES:
            raise ValueError(f"dates must be one of {', '.join(DATES_MODES)}, got {self.dates!r}")

    def describe(self) -> dict[str, Any]:
        """The policy as JSON-ready data, with the key's fingerprint in place of the key."""
        return {
            "profile": f"Basic Application Level Confidentiality Profile ({PROFILE_EDITION})",
            "dates": self.dates,
            "keep_patient_characteristics": self.keep_patient_characteristics,
            "remove_private": self.remove_private,
            "key_fingerprint": key_fingerprint(self.key),
        }
