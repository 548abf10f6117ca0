"""`DeidSummary`: counts of what a de-identification run did, with no patient data in it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileIssue:
    """A file that was not written to the output: its path relative to IN and a reason code."""

    path: str
    reason: str


@dataclass
class DeidSummary:
    """What `deidentify_tree` did; saved as ``OUT/deid_summary.json``.

    Paths are relative to IN and appear only for files that failed (so the user can find
    them); quarantined files are listed, with their reasons, only in the quarantine folder.
    """

    policy: dict[str, Any]
    files_found: int = 0
    files_written: int = 0
    files_quarantined: int = 0
    files_skipped: int = 0
    files_errored: int = 0
    action_counts: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    errors: list[FileIssue] = field(default_factory=list)
    quarantine_dir: str = ""

    def to_json(self) -> str:
        """The summary as indented JSON (keys sorted, so reruns diff cleanly)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def table_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a short printed table."""
        rows = [
            ("files found", str(self.files_found)),
            ("written", str(self.files_written)),
            ("quarantined", _with_reasons(self.files_quarantined, self.quarantine_reasons)),
            ("skipped", _with_reasons(self.files_skipped, self.skip_reasons)),
            ("errors", str(self.files_errored)),
        ]
        actions = ", ".join(f"{k} {v}" for k, v in sorted(self.action_counts.items()))
        rows.append(("actions", actions or "-"))
        return rows


def _with_reasons(count: int, reasons: dict[str, int]) -> str:
    if not reasons:
        return str(count)
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"{count} ({detail})"
