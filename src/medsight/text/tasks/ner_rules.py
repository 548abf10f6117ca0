"""The rules every tagger run is reported beside, on the same notes.

``entities``: the rule pipeline's entities (`medsight.text.pipeline.analyze.default_pipeline`);
``phi``: the rule de-identifier's spans (`medsight.text.deid.deidentify.deidentify_text` in tag
mode). Imported when first used: a build without them reports the model alone and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int, str]
#: the key the de-identifier is called with: tag mode writes no surrogates, so it only
#: seeds offsets that the spans do not depend on
RULES_KEY = "text-ner-baseline"


def rule_spans(key: str, texts: Sequence[str]) -> tuple[list[list[Span]] | None, str]:
    """The rules' spans per note and a one-line description (None when the rules are absent)."""
    if key == "phi":
        try:
            from medsight.text.deid.deidentify import deidentify_text
        except ImportError:
            return None, "rule de-identifier (text.deid) not in this build: model only"
        spans = [
            [(s.start, s.end, s.type) for s in deidentify_text(t, key=RULES_KEY, mode="tag").spans]
            for t in texts
        ]
        return spans, "rule de-identifier (medsight text deid, tag mode)"
    try:
        from medsight.text.pipeline.analyze import default_pipeline
    except ImportError:
        return None, "rule pipeline (text.pipeline.analyze) not in this build: model only"
    pipeline = default_pipeline()
    spans = [[(e.start, e.end, e.type) for e in pipeline.analyze_text(t).entities] for t in texts]
    return spans, "rule pipeline (medsight text analyze: spaCy patterns + ConText)"
