"""Dummy values for action D: valid for each VR and carrying nothing of the original.

Text gets ``ANONYMIZED`` (fits every text VR's length limit), numbers 0, dates 1900-01-01,
binary VRs eight zero bytes (a whole number of words for OB/OW/OF/OL/OD/OV). A sequence gets a
single empty item: a non-empty value that says nothing. UIDs are never given a dummy: they
are replaced by keyed hashes (`hashed_uid`), so references between instances stay valid.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

DUMMY_TEXT = "ANONYMIZED"
_DUMMIES: dict[str, object] = {
    "AE": DUMMY_TEXT,
    "AS": "000Y",
    "AT": 0,
    "CS": DUMMY_TEXT,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "FD": 0.0,
    "FL": 0.0,
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "SL": 0,
    "SS": 0,
    "ST": DUMMY_TEXT,
    "SV": 0,
    "TM": "000000",
    "UC": DUMMY_TEXT,
    "UL": 0,
    "UR": DUMMY_TEXT,
    "US": 0,
    "UT": DUMMY_TEXT,
    "UV": 0,
}
_BINARY_DUMMY = bytes(8)


def dummy_value(vr: str) -> object:
    """A fresh dummy value for ``vr`` (for ambiguous VRs such as ``US or SS``, the first)."""
    vr = vr.split(" or ")[0]
    if vr == "SQ":
        return Sequence([Dataset()])
    return _DUMMIES.get(vr, _BINARY_DUMMY)
