"""`medsight explain RUN NOTE.txt -o OUT` for a tagger: how sure it was of each token's tag.

The CRF's marginals (`CRF.marginals`, exact forward-backward) give every token the
probability of each tag; the page shades each token by the probability that it is part of
some span (``1 - P(O)``) and titles it with its most likely tag, so a reader sees what the
tagger found and where it hesitated (a name it half-recognised). Writes
``OUT/explanation.html`` and ``OUT/explanation.json`` (per token: offsets, best tag, its
probability, P(inside a span)). Both hold the note's text: they go where the user asks, never
into a log.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from medsight.console import say
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import ExplainOptions
from medsight.text.io.text_files import read_text_note
from medsight.text.tasks.ner_weights import load_tagger

STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.8}"
    "pre{white-space:pre-wrap;font-family:inherit}"
    "span.t{border-radius:3px}"
)


def explain_ner(run_dir: Path, source: Path, options: ExplainOptions) -> Path:
    """Write the token-probability page and JSON for one note; return the page's path.

    Raises:
        InputError: a missing run or an unreadable note.
    """
    tagger = load_tagger(run_dir)
    text = read_text_note(source).text
    tokens, marginals = tagger.marginals(text)
    best = marginals.argmax(1) if len(tokens) else np.zeros(0, np.int64)
    inside = 1.0 - marginals[:, 0] if len(tokens) else np.zeros(0)
    parts, last, rows = [], 0, []
    for i, token in enumerate(tokens):
        tag = tagger.tags[int(best[i])]
        p_best, p_in = float(marginals[i, best[i]]), float(inside[i])
        rows.append(
            {"start": token.start, "end": token.end, "tag": tag, "p": p_best, "p_span": p_in}
        )
        parts.append(html.escape(text[last : token.start]))
        colour = f"rgba(220,60,40,{p_in:.2f})"
        parts.append(
            f'<span class="t" style="background:{colour}" title="{html.escape(tag)} '
            f'{p_best:.2f}">{html.escape(token.text)}</span>'
        )
        last = token.end
    parts.append(html.escape(text[last:]))
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tagger explanation</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Tag probabilities ({html.escape(tagger.network.network)})</h1>"
        "<p>Shading: probability that the token is part of a span (CRF marginals); hover "
        "for the most likely tag and its probability.</p>"
        f"<pre>{''.join(parts)}</pre></body></html>"
    )
    path = write_text_atomic(out / "explanation.html", page)
    write_text_atomic(out / "explanation.json", json.dumps({"tokens": rows}) + "\n")
    say(f"explanation: {path}")
    return path
