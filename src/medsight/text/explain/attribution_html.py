"""Token attributions drawn over the note: one self-contained HTML page, no script, no network.

Each explained output gets a block: its label and probability, then the note's text with
every scored token shaded by its signed score (red: supports the label, blue: speaks
against it; opacity proportional to the score over the block's largest absolute score) and
the score in the token's tooltip. Text between tokens (spaces, line breaks) is kept as it
is. Everything is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExplainedOutput:
    """One output's explanation: its label and each token's span and score."""

    output: str
    label: str
    probability: float
    method: str
    #: ``(start, end, score)`` per token, character offsets into the note
    tokens: Sequence[tuple[int, int, float]]


def _shaded(text: str, tokens: Sequence[tuple[int, int, float]]) -> str:
    largest = max((abs(s) for _, _, s in tokens), default=0.0) or 1.0
    parts, cursor = [], 0
    for start, end, score in sorted(tokens):
        if start < cursor:  # overlapping pieces: the first one shades the characters
            continue
        parts.append(html.escape(text[cursor:start]))
        alpha = min(1.0, abs(score) / largest)
        colour = "220,50,47" if score > 0 else "38,139,210"
        parts.append(
            f'<span style="background:rgba({colour},{alpha:.2f})" '
            f'title="{score:+.4f}">{html.escape(text[start:end])}</span>'
        )
        cursor = end
    parts.append(html.escape(text[cursor:]))
    return "".join(parts)


def attribution_page(title: str, text: str, explained: Sequence[ExplainedOutput]) -> str:
    """The HTML page (see the module docstring)."""
    blocks = []
    for item in explained:
        blocks.append(
            f"<section><h2>{html.escape(item.output)}: {html.escape(item.label)} "
            f'({item.probability:.1%})</h2><p class="muted">{html.escape(item.method)}; red '
            "tokens support this label, blue ones speak against it (hover for the score)."
            f'</p><pre class="note">{_shaded(text, item.tokens)}</pre></section>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
        ".note{white-space:pre-wrap;font-family:ui-monospace,monospace;line-height:1.6;"
        "border:1px solid #ccc;padding:1em}.muted{color:#666}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(blocks)}</body></html>\n"
    )
