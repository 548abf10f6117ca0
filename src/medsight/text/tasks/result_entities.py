"""The entities a text result carries: the rule pipeline's, or a tagger's spans with the rule
pipeline's assertion context, as `TextEntity` records with their text and the note's sections.

Both text tasks answer with these (`TextResult.entities`), so a classifier's result and a
tagger's read alike in the CLI, the service and the viewer.
"""

from __future__ import annotations

from medsight.tasks.results import TextEntity
from medsight.text.pipeline.analyze import default_pipeline


def result_entities(
    text: str, spans: list[tuple[int, int, str]] | None = None
) -> tuple[list[TextEntity], list[str]]:
    """Entities with assertion context and the section names of ``text``, in order.

    Args:
        text: The note.
        spans: ``(start, end, type)`` found by a model; None: the rule pipeline's entities.
    """
    pipeline = default_pipeline()
    analyzed = pipeline.analyze_text(text)
    found = analyzed.entities if spans is None else pipeline.context_of(text, spans)
    entities = [
        TextEntity.model_validate({**e.to_json(), "text": text[e.start : e.end]}) for e in found
    ]
    return entities, list(dict.fromkeys(s.name for s in analyzed.sections))
