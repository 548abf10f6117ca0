"""One self-contained HTML page of analysed notes (`medsight text analyze`'s analysis.html).

Every character of a note goes through ``html.escape``; the page has no script and loads
nothing (inline CSS), so it can be opened from a folder, mailed or archived as it is. Entities
are ``<mark>`` elements coloured by type; negated ones are struck through, uncertain ones
dashed, historical and hypothetical ones italic with a marker, someone else's (family)
underlined twice; each carries its concept and context in a ``title`` tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from medsight.text.pipeline.annotations import AnalyzedNote, Entity

#: entity type -> highlight colour
TYPE_COLOURS = {
    "finding": "#ffd6a5",
    "device": "#caffbf",
    "anatomy": "#e0e7ff",
    "medication": "#bde0fe",
    "procedure": "#fdffb6",
    "measurement": "#ffc6ff",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:60em;
color:#222;line-height:1.5}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ccc}
.note{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;
background:#fafafa;border:1px solid #ddd;padding:1em;border-radius:4px}
.hdr{font-weight:bold;color:#1d3557}
mark{border-radius:3px;padding:0 1px;color:inherit}
mark.negated{text-decoration:line-through;text-decoration-thickness:2px;opacity:.75}
mark.uncertain{outline:1.5px dashed #555;outline-offset:-1px}
mark.historical,mark.hypothetical{font-style:italic}
mark.historical::after{content:"\\1D34";font-size:.7em;vertical-align:super}
mark.hypothetical::after{content:"?";font-size:.7em;vertical-align:super}
mark.other{text-decoration:underline double #9d0208}
mark.negated.other{text-decoration:line-through underline}
.legend{display:flex;flex-wrap:wrap;gap:.6em;font-size:.85em;margin:1em 0}
.legend span{padding:0 .4em}
table.labels{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.labels td,table.labels th{border:1px solid #ddd;padding:.1em .5em;text-align:left}
.meta{color:#666;font-size:.85em}
"""


def _classes(entity: Entity) -> str:
    classes = [f"t-{entity.type}"]
    if entity.negation == "negated":
        classes.append("negated")
    if entity.certainty == "uncertain":
        classes.append("uncertain")
    if entity.temporality != "recent":
        classes.append(entity.temporality)
    if entity.experiencer != "patient":
        classes.append("other")
    return " ".join(classes)


def _title(entity: Entity) -> str:
    parts = [entity.type, entity.concept]
    if entity.value_mm is not None:
        parts.append(f"{entity.value_mm:g} mm")
    parts += [entity.negation, entity.certainty, entity.temporality, entity.experiencer]
    if entity.section:
        parts.append(f"section {entity.section}")
    return " \u00b7 ".join(parts)


def note_html(text: str, analyzed: AnalyzedNote) -> str:
    """The note's text as HTML: section headers bold, entities as ``<mark>`` elements.

    Overlapping entities (possible when spans come from a tagger) keep the first; an entity
    is cut at a section header's edge.
    """
    headers = [(s.start, s.body_start) for s in analyzed.sections]
    entities: list[Entity] = []
    end = -1
    for entity in sorted(analyzed.entities, key=lambda e: (e.start, -e.end)):
        if entity.start >= end and 0 <= entity.start < entity.end <= len(text):
            entities.append(entity)
            end = entity.end
    cuts = {0, len(text)}
    for a, b in headers:
        cuts.update((a, b))
    for e in entities:
        cuts.update((e.start, e.end))
    points = sorted(c for c in cuts if 0 <= c <= len(text))
    out: list[str] = []
    h = k = 0
    for a, b in zip(points, points[1:], strict=False):
        while h < len(headers) and headers[h][1] <= a:
            h += 1
        while k < len(entities) and entities[k].end <= a:
            k += 1
        piece = html.escape(text[a:b])
        if k < len(entities) and entities[k].start <= a:
            entity = entities[k]
            piece = (
                f'<mark class="{_classes(entity)}" title="{html.escape(_title(entity))}" '
                f'style="background:{TYPE_COLOURS.get(entity.type, "#eee")}">{piece}</mark>'
            )
        if h < len(headers) and headers[h][0] <= a:
            piece = f'<span class="hdr">{piece}</span>'
        out.append(piece)
    return "".join(out)


def legend_html() -> str:
    """The key to the colours and marks."""
    items = [
        f'<mark style="background:{colour}">{name}</mark>' for name, colour in TYPE_COLOURS.items()
    ]
    sample = TYPE_COLOURS["finding"]
    items += [
        f'<mark class="negated" style="background:{sample}">negated</mark>',
        f'<mark class="uncertain" style="background:{sample}">uncertain</mark>',
        f'<mark class="historical" style="background:{sample}">historical</mark>',
        f'<mark class="hypothetical" style="background:{sample}">hypothetical</mark>',
        f'<mark class="other" style="background:{sample}">someone else (family)</mark>',
    ]
    return '<div class="legend">' + "".join(f"<span>{i}</span>" for i in items) + "</div>"


def _labels_html(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in labels.items()
    )
    return f'<table class="labels"><tr><th>output</th><th>label</th></tr>{rows}</table>'


def analyzed_notes_page(
    notes: Iterable[tuple[str, AnalyzedNote]], title: str = "Analysed notes"
) -> str:
    """A whole page: legend, then per note its id, sections, labels and highlighted text.

    Args:
        notes: ``(text, analysed note)`` pairs in the order to show.
        title: the page title.
    """
    body: list[str] = []
    count = 0
    for text, analyzed in notes:
        count += 1
        sections: Sequence[str] = [s.name for s in analyzed.sections]
        negated = sum(e.negation == "negated" for e in analyzed.entities)
        body.append(
            f'<h2 id="note-{count}">{html.escape(analyzed.note_id or f"note {count}")}</h2>'
            f'<p class="meta">{len(analyzed.entities)} entities ({negated} negated), '
            f"{len(analyzed.sentences)} sentences; sections: "
            f"{html.escape(', '.join(sections) or 'none')}</p>"
            f"{_labels_html(analyzed.labels)}"
            f'<div class="note">{note_html(text, analyzed)}</div>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="meta">{count} notes</p>{legend_html()}'
        + "".join(body)
        + "</body></html>\n"
    )
