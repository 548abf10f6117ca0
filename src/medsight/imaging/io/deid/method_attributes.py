"""Record what was done: PatientIdentityRemoved, DeidentificationMethod and its code sequence.

Codes come from PS3.16 CID 7050 "De-identification Method" via pydicom's code dictionary:
113100 Basic Application Confidentiality Profile, plus 113106 / 113107 (Retain Longitudinal
Temporal Information Full / Modified Dates Option) and 113108 (Retain Patient
Characteristics Option) when used. Values already present are replaced, not appended.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

import medsight
from medsight.imaging.io.deid.policy import DeidPolicy
from medsight.imaging.io.deid.profile_table import PROFILE_EDITION

_TEMPORAL_STATE = {"keep": "UNMODIFIED", "shift": "MODIFIED", "remove": "REMOVED"}


def method_codes(policy: DeidPolicy) -> list[Code]:
    """The CID 7050 codes describing ``policy``: the profile first, then each option used."""
    used = [codes.DCM.BasicApplicationConfidentialityProfile]
    if policy.dates == "keep":
        used.append(codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption)
    elif policy.dates == "shift":
        used.append(codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption)
    if policy.keep_patient_characteristics:
        used.append(codes.DCM.RetainPatientCharacteristicsOption)
    return used


def method_text(policy: DeidPolicy) -> list[str]:
    """DeidentificationMethod values (LO, each at most 64 characters)."""
    values = [str(code.meaning) for code in method_codes(policy)]
    values.append(f"medsight {medsight.__version__}, table {PROFILE_EDITION}")
    values.append("UIDs: keyed HMAC-SHA256 to 2.25 UUID UIDs")
    if not policy.remove_private:
        values.append("Private attributes retained, not reviewed")
    return values


def mark_deidentified(ds: Dataset, policy: DeidPolicy) -> None:
    """Set the de-identification attributes of ``ds`` (in place) for ``policy``."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = method_text(policy)
    items = []
    for code in method_codes(policy):
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = _TEMPORAL_STATE[policy.dates]
