"""`medsight text label`'s job: label every report, write ``labels.csv`` and, against
reference labels, ``agreement.json`` and ``agreement.html``.

Writes no report text except the disagreement snippets the caller asks for (``examples``):
those are for reviewing the labeller on public or de-identified reports.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from medsight.errors import InputError
from medsight.runs.atomic import atomic_path, write_text_atomic
from medsight.text.evaluate.agreement_per_finding import agreement_per_finding
from medsight.text.io.note import Note
from medsight.text.labeller.agreement_page import agreement_html
from medsight.text.labeller.disagreements import disagreement_examples
from medsight.text.labeller.findings import FINDINGS
from medsight.text.labeller.reference_labels import read_reference_labels
from medsight.text.labeller.report_labels import DEFAULT_RULES, LabelRules, label_report
from medsight.text.pipeline.annotations import AnalyzedNote


class NotePipeline(Protocol):
    """What the labeller needs of the rule pipeline (`TextPipeline`)."""

    def pipe(self, notes: Iterable[Note], batch_size: int = 64) -> Iterator[AnalyzedNote]: ...


@dataclass
class LabelSummary:
    """What a labelling run wrote."""

    n_reports: int
    files: list[Path] = field(default_factory=list)
    #: `agreement_per_finding`'s result when reference labels were given
    agreement: dict[str, Any] | None = None
    #: reference reports with no report among the inputs (not scored)
    n_reference_unmatched: int = 0


def label_notes(
    notes: Iterable[Note],
    out: Path,
    gold: Path | None = None,
    *,
    pipeline: NotePipeline | None = None,
    findings: Sequence[str] = FINDINGS,
    rules: LabelRules = DEFAULT_RULES,
    examples: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> LabelSummary:
    """Label ``notes``; write ``out/labels.csv`` and, with ``gold``, the agreement files.

    Args:
        notes: The reports.
        out: Output folder (created).
        gold: Reference labels (radlabels' ``labels.json`` format), optional.
        pipeline: The rule pipeline (default `default_pipeline()`).
        findings: The findings to label (columns of ``labels.csv``).
        rules: The labeller's rules.
        examples: Disagreement examples per finding in the agreement files (0: no report text).
        n_boot: Bootstrap resamples of the agreement CIs.
        seed: Seed of the bootstrap.

    Returns:
        A `LabelSummary`.

    Raises:
        InputError: If two notes share an id, the reference labels cannot be read, or none
            of the reports has reference labels.
    """
    reference = read_reference_labels(gold) if gold is not None else None
    if pipeline is None:
        from medsight.text.pipeline.analyze import default_pipeline

        pipeline = default_pipeline()
    texts: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = {}
    analysed: dict[str, AnalyzedNote] = {}
    sources: dict[str, str] = {}

    def remember(stream: Iterable[Note]) -> Iterator[Note]:
        for note in stream:
            if note.note_id in sources:
                raise InputError(f"{note.source}: note_id repeats that of {sources[note.note_id]}")
            sources[note.note_id] = note.source or note.note_id
            if reference is not None and note.note_id in reference:
                texts[note.note_id] = note.text
            yield note

    out.mkdir(parents=True, exist_ok=True)
    labels_csv = out / "labels.csv"
    with atomic_path(labels_csv) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", *findings])
        for note in pipeline.pipe(remember(notes)):
            row = label_report(note, findings, rules)
            writer.writerow([note.note_id, *row.values()])
            if reference is not None and note.note_id in reference:
                labels[note.note_id] = row
                analysed[note.note_id] = note
    summary = LabelSummary(n_reports=len(sources), files=[labels_csv])
    if reference is None:
        return summary
    scored = {rid: reference[rid] for rid in reference if rid in labels}
    if not scored:
        raise InputError(f"{gold}: none of its reports is among the notes labelled (ids differ?)")
    agreement = agreement_per_finding(labels, scored, findings, n_boot=n_boot, seed=seed)
    reports = {rid: (texts[rid], analysed[rid]) for rid in scored}
    rows = disagreement_examples(
        reports, labels, scored, findings, per_finding=examples, rules=rules
    )
    unmatched = len(reference) - len(scored)
    record = {
        "reference": str(gold),
        "n_reports_labelled": summary.n_reports,
        "n_reports_scored": len(scored),
        "n_reference_unmatched": unmatched,
        "rules": {**asdict(rules), "implied": {k: list(v) for k, v in rules.implied.items()}},
        "agreement": agreement,
        "examples": {f: [r.to_json() for r in rows[f]] for f in findings if rows[f]},
    }
    summary.files.append(write_text_atomic(out / "agreement.json", json.dumps(record, indent=1)))
    summary.files.append(write_text_atomic(out / "agreement.html", agreement_html(agreement, rows)))
    summary.agreement = agreement
    summary.n_reference_unmatched = unmatched
    return summary
