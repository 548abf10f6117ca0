"""The HTML page of analysed notes: escaped, self-contained, entities marked by context."""

from __future__ import annotations

import re

from medsight.text.pipeline.analyze import TextPipeline
from medsight.text.render.analyzed_notes_html import analyzed_notes_page, note_html

TEXT = (
    "FINDINGS: No pneumothorax. Possible pneumonia. History of emphysema. "
    "Mother had lung cancer. <script>alert('x')</script> & 8 mm nodule."
)


def test_the_page_escapes_the_note_and_loads_nothing(pipeline: TextPipeline) -> None:
    page = analyzed_notes_page([(TEXT, pipeline.analyze_text(TEXT, "<b>id</b>"))])
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;id&lt;/b&gt;" in page and "<b>id" not in page
    assert not re.search(r"(src|href)=", page)
    assert "legend" in page and page.startswith("<!DOCTYPE html>")


def test_entities_are_marked_by_type_and_context(pipeline: TextPipeline) -> None:
    body = note_html(TEXT, pipeline.analyze_text(TEXT))
    found = re.findall(r'<mark class="([^"]+)"[^>]*>([^<]+)</mark>', body)
    marks = {text: classes for classes, text in found}
    assert "negated" in marks["pneumothorax"]
    assert "uncertain" in marks["pneumonia"]
    assert "historical" in marks["emphysema"]
    assert "other" in marks["lung cancer"]
    assert marks["8 mm"] == "t-measurement"
    assert '<span class="hdr">FINDINGS:</span>' in body
    # the text comes back whole once the markup is taken away
    plain = re.sub(r"<[^>]+>", "", body)
    assert (
        plain.replace("&lt;", "<").replace("&gt;", ">").replace("&#x27;", "'").replace("&amp;", "&")
        == TEXT
    )
