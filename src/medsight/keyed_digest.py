"""The keyed hash every de-identification derives from: HMAC-SHA256 under the user's key.

Imaging (UIDs, pseudonyms, date offsets of DICOM studies) and EHR (pseudonymous subject ids
and date offsets of records) both derive their values here, each with its own ``purpose``
string so that the same text hashed for two uses does not hash alike. Bottom layer: imports
nothing from medsight.
"""

from __future__ import annotations

import hashlib
import hmac


def keyed_digest(key: str, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` under ``key``, domain-separated by ``purpose``."""
    message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()
