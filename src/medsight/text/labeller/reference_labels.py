"""Reading reference report labels: radlabels' ``labels.json`` and files written like it.

``{report_id: {finding: label}}`` where a label is ``definitely present`` / ``definitely
absent`` / ``uncertain`` (radlabels) or ``present`` / ``absent`` / ``uncertain`` / ``not
mentioned`` (ours); a finding a report does not list is not mentioned.
"""

from __future__ import annotations

import json
from pathlib import Path

from medsight.errors import InputError
from medsight.text.evaluate.agreement_per_finding import LABEL_SPELLINGS

#: a labels file over this many bytes is refused before it is read (radlabels' 1,000
#: reports take 260 kB)
MAX_LABELS_BYTES = 256 * 1024 * 1024


def read_reference_labels(path: Path) -> dict[str, dict[str, str]]:
    """``{report_id: {finding: present|absent|uncertain}}`` from a labels JSON file.

    Raises:
        InputError: If the file is missing, too large, not JSON, or not shaped like
            radlabels' ``labels.json`` (the message names the report and finding at fault).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(f"{path}: no such labels file") from None
    if size > MAX_LABELS_BYTES:
        raise InputError(f"{path}: {size:,} bytes is over the {MAX_LABELS_BYTES:,}-byte limit")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise InputError(f"{path}: not a readable JSON file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object {{report_id: {{finding: label}}}}")
    labels: dict[str, dict[str, str]] = {}
    for report_id, findings in data.items():
        if not isinstance(findings, dict):
            raise InputError(f"{path}: report {report_id}: expected an object {{finding: label}}")
        row = {}
        for finding, value in findings.items():
            label = LABEL_SPELLINGS.get(value.strip().lower()) if isinstance(value, str) else None
            if label is None:
                raise InputError(
                    f"{path}: report {report_id}, finding {finding}: unknown label; expected "
                    "definitely present / definitely absent / uncertain"
                )
            if label != "not mentioned":
                row[str(finding)] = label
        labels[str(report_id)] = row
    return labels
