"""Example disagreements between our report labels and reference labels, for review.

Per finding, a few reports where the two differ, spread over the kinds of disagreement
(reference present / ours absent, reference absent / ours uncertain, ...), each with the
sentences where the pipeline found the finding (or, when it found none, the start of the
impression) and what each of those mentions said. Snippets are short and single-line; they
hold report text, so callers write them only where the user asked for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from medsight.text.labeller.report_labels import DEFAULT_RULES, LabelRules, mention_label
from medsight.text.pipeline.annotations import AnalyzedNote, Entity

NOT_FOUND = "[no mention found] "


@dataclass
class Disagreement:
    """One report where our label of a finding differs from the reference's."""

    report_id: str
    finding: str
    reference: str
    ours: str
    #: the sentences that mention the finding, shortened to one line
    snippet: str
    #: what each mention said: ``"impression: uncertain (affirmed, uncertain, recent)"``
    mentions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _one_line(text: str, max_chars: int) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= max_chars else line[: max_chars - 1].rstrip() + "…"


def _describe(entity: Entity, finding: str, rules: LabelRules) -> str:
    """``"[via consolidation] impression: uncertain (affirmed, uncertain, recent, patient)"``."""
    via = f"via {entity.concept} " if entity.concept != finding else ""
    said = mention_label(entity, rules) or "not counted"
    context = f"{entity.negation}, {entity.certainty}, {entity.temporality}, {entity.experiencer}"
    return f"{via}{entity.section or 'no section'}: {said} ({context})"


def _snippet(text: str, analyzed: AnalyzedNote, concepts: set[str], max_chars: int) -> str:
    starts = sorted({e.start for e in analyzed.entities if e.concept in concepts})
    picked: list[tuple[int, int]] = []
    for start in starts:
        sentence = next(((s, e) for s, e in analyzed.sentences if s <= start < e), None)
        if sentence is None:
            sentence = (max(0, start - 80), min(len(text), start + 80))
        if sentence not in picked:
            picked.append(sentence)
    if picked:
        return _one_line(" … ".join(text[s:e] for s, e in picked), max_chars)
    section = next((s for s in analyzed.sections if s.name == "impression"), None) or next(
        (s for s in analyzed.sections if s.name == "findings"), None
    )
    start = section.body_start if section is not None else 0
    return NOT_FOUND + _one_line(text[start : start + max_chars], max_chars - len(NOT_FOUND))


def disagreement_examples(
    reports: Mapping[str, tuple[str, AnalyzedNote]],
    ours: Mapping[str, Mapping[str, str]],
    reference: Mapping[str, Mapping[str, str]],
    findings: Sequence[str],
    per_finding: int = 5,
    max_chars: int = 240,
    rules: LabelRules = DEFAULT_RULES,
) -> dict[str, list[Disagreement]]:
    """Up to ``per_finding`` disagreements per finding, spread over the kinds of disagreement.

    Args:
        reports: report id -> (text, analysed report) for the reports compared.
        ours: report id -> our labels (a missing finding is "not mentioned").
        reference: report id -> reference labels (normalised, see `read_reference_labels`).
        findings: The findings to look at.
        per_finding: How many examples at most per finding.
        max_chars: Longest snippet.
        rules: The rules the labels were made with (to say what each mention counted as).

    Returns:
        ``{finding: [Disagreement]}`` (findings without disagreements map to ``[]``).
    """
    implied_by: dict[str, set[str]] = {}
    for child, parents in rules.implied.items():
        for parent in parents:
            implied_by.setdefault(parent, set()).add(child)
    examples: dict[str, list[Disagreement]] = {}
    for finding in findings:
        cells: dict[tuple[str, str], list[str]] = {}
        for report_id in sorted(reference):
            if report_id not in reports:
                continue
            ref = reference[report_id].get(finding, "not mentioned")
            our = ours.get(report_id, {}).get(finding, "not mentioned")
            if ref != our:
                cells.setdefault((ref, our), []).append(report_id)
        chosen: list[tuple[str, str, str]] = []
        queues = [[(rid, ref, our) for rid in ids] for (ref, our), ids in sorted(cells.items())]
        while len(chosen) < per_finding and any(queues):
            for queue in queues:
                if queue and len(chosen) < per_finding:
                    chosen.append(queue.pop(0))
        rows = []
        for report_id, ref, our in chosen:
            text, analyzed = reports[report_id]
            concepts = {finding} | implied_by.get(finding, set())
            mentions = [
                _describe(e, finding, rules) for e in analyzed.entities if e.concept in concepts
            ]
            rows.append(
                Disagreement(
                    report_id=report_id,
                    finding=finding,
                    reference=ref,
                    ours=our,
                    snippet=_snippet(text, analyzed, concepts, max_chars),
                    mentions=mentions,
                )
            )
        examples[finding] = rows
    return examples
