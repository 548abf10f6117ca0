"""`DeidentifiedRecord`: one patient's record after de-identification, with its keyed values."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeidentifiedRecord:
    """A de-identified record and what it was de-identified with.

    Attributes:
        record: the de-identified FHIR Bundle, or ``{"events": [...]}`` of MEDS rows
            (times as ISO 8601 strings, shifted; no ``text_value``).
        kind: ``fhir`` or ``meds``.
        pseudonym: the patient's keyed pseudonym (not reversible without the key).
        subject_id: the pseudonymous MEDS ``subject_id``.
        offset_days: the shift applied to every date (never stored: with it and a shifted
            date one could recover the original date).
    """

    record: dict[str, Any]
    kind: str
    pseudonym: str
    subject_id: int
    offset_days: int

    def canonical_json(self) -> bytes:
        """The record as canonical JSON (sorted keys, no spaces): what its hash is taken of."""
        return json.dumps(
            self.record, sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("ascii")

    def sha256(self) -> str:
        """SHA-256 of `canonical_json`: identifies the data without being derived from PHI."""
        return hashlib.sha256(self.canonical_json()).hexdigest()
