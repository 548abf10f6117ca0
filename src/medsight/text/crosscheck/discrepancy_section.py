"""The discrepancy list as an HTML report section (``crosscheck_section.html.j2``, rendered
with the evaluation report's environment: autoescaped, the report's filters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medsight.evaluate.report.html_report import render_page
from medsight.text.crosscheck.discrepancies import (
    SMALL_SIZE_MM,
    SUSPICIOUS_SIZE_MM,
    Discrepancy,
)

TEMPLATE = "crosscheck_section.html.j2"


def discrepancy_section_html(
    discrepancies: Sequence[Discrepancy],
    summary: Mapping[str, Any],
    title: str = "Image model vs report: discrepancy list",
    max_rows: int = 50,
) -> str:
    """The section: a summary line, counts per kind and the table (first ``max_rows`` rows)."""
    return render_page(
        TEMPLATE,
        {
            "section_title": title,
            "rows": [d.to_json() for d in discrepancies[:max_rows]],
            "hidden": max(0, len(discrepancies) - max_rows),
            "summary": summary,
            "suspicious_mm": SUSPICIOUS_SIZE_MM,
            "small_mm": SMALL_SIZE_MM,
        },
    )
