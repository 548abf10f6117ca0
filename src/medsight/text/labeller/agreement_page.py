"""``agreement.html``: the labeller's agreement with reference labels, per finding, as one
self-contained page (a table with CIs and confusion counts, example disagreements folded
under each finding). Everything from a report is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from medsight.text.labeller.disagreements import Disagreement

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
td.name,th.name{text-align:left}
td.examples{text-align:left;max-width:55em}
.muted{color:#777}
details{margin:2px 0}
q{font-family:ui-monospace,monospace;font-size:12px;quotes:none}
"""


def _ci(value: Mapping[str, Any] | None) -> str:
    if not value or value.get("point") is None:
        return '<span class="muted">n/a</span>'
    if value.get("low") is None:
        return f"{value['point']:.2f}"
    return (
        f'{value["point"]:.2f} <span class="muted">({value["low"]:.2f}–{value["high"]:.2f})</span>'
    )


def _confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    short = {"present": "P", "absent": "A", "uncertain": "U", "not mentioned": "–"}
    cells = [
        f"{short[labels[i]]}→{short[labels[j]]} {matrix[i][j]}"
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and matrix[i][j]
    ]
    return ", ".join(cells) or '<span class="muted">none</span>'


def _examples(rows: Sequence[Disagreement]) -> str:
    if not rows:
        return ""
    items = "".join(
        f"<li><b>{escape(r.report_id)}</b> reference {escape(r.reference)}, ours "
        f"{escape(r.ours)}: <q>{escape(r.snippet)}</q>"
        + (f' <span class="muted">[{escape("; ".join(r.mentions))}]</span>' if r.mentions else "")
        + "</li>"
        for r in rows
    )
    return f"<details><summary>{len(rows)} examples</summary><ul>{items}</ul></details>"


def agreement_html(
    agreement: Mapping[str, Any],
    examples: Mapping[str, Sequence[Disagreement]],
    title: str = "Report labeller agreement",
) -> str:
    """The page for `agreement_per_finding`'s result and `disagreement_examples`' rows."""
    labels = agreement["labels"]
    header = (
        "<tr><th class=name>finding</th><th>reference P/A/U</th><th>ours P/A/U</th>"
        "<th>accuracy where the reference labels it</th><th>Cohen's kappa</th>"
        "<th>F1 present</th><th>F1 absent</th><th>F1 uncertain</th>"
        "<th>F1 present or uncertain</th>"
        "<th class=name>disagreements (reference→ours)</th><th class=name>examples</th></tr>"
    )

    def row(name: str, m: Mapping[str, Any], rows: Sequence[Disagreement]) -> str:
        ref, our = m["reference_counts"], m["our_counts"]
        return (
            f"<tr><td class=name>{escape(name)}</td>"
            f"<td>{ref['present']}/{ref['absent']}/{ref['uncertain']}</td>"
            f"<td>{our['present']}/{our['absent']}/{our['uncertain']}</td>"
            f"<td>{_ci(m['accuracy_mentioned'])}</td><td>{_ci(m['kappa'])}</td>"
            f"<td>{_ci(m['f1_present'])}</td><td>{_ci(m['f1_absent'])}</td>"
            f"<td>{_ci(m['f1_uncertain'])}</td><td>{_ci(m['f1_present_or_uncertain'])}</td>"
            f"<td class=name>{_confusion(m['confusion'], labels)}</td>"
            f"<td class=examples>{_examples(rows)}</td></tr>"
        )

    body = "".join(
        row(name, m, examples.get(name, ()))
        for name, m in sorted(
            agreement["findings"].items(),
            key=lambda kv: -sum(kv[1]["reference_counts"][k] for k in labels[:3]),
        )
    )
    overall = row("all findings (pooled)", agreement["overall"], ())
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>{agreement['n_reports']} reports; 95% intervals: {escape(agreement['ci_method'])}, "
        f"{agreement['n_boot']} resamples. Counts P/A/U = present/absent/uncertain; a finding a "
        'report does not label is "not mentioned" (–). Reference labels may themselves be '
        "wrong: read the examples before counting a disagreement as our error.</p>"
        f"<table>{header}{overall}{body}</table></body></html>\n"
    )
