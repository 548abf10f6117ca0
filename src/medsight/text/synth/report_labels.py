"""A report's gold label per finding, from its gold entities (the rule `chest_ct_reports`
documents): only recent mentions about the patient count; a certain affirmed one makes the
finding present, else an uncertain one uncertain, else a negated one absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def findings_from_entities(
    entities: Iterable[Mapping[str, Any]], findings: Sequence[str]
) -> dict[str, str]:
    """``{finding: present|absent|uncertain|not mentioned}`` for every name in ``findings``."""
    states: dict[str, set[str]] = {name: set() for name in findings}
    for e in entities:
        if e["concept"] not in states or e["temporality"] != "recent":
            continue
        if e["experiencer"] != "patient":
            continue
        if e["negation"] == "negated":
            states[e["concept"]].add("absent")
        elif e["certainty"] == "uncertain":
            states[e["concept"]].add("uncertain")
        else:
            states[e["concept"]].add("present")
    labels = {}
    for name in findings:
        seen = states[name]
        labels[name] = next(
            (s for s in ("present", "uncertain", "absent") if s in seen), "not mentioned"
        )
    return labels
