"""Assertion context of one concept in one text: what `medsight text assert` writes per row."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from medsight.errors import InputError

if TYPE_CHECKING:
    from medsight.text.pipeline.analyze import TextPipeline

#: the attributes written per concept, in this order
ATTRIBUTES = ("negation", "certainty", "temporality", "experiencer")


def find_concept(text: str, concept: str) -> tuple[int, int] | None:
    """The first place ``concept`` occurs in ``text`` as whole words (case and spacing
    ignored), or None."""
    words = concept.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE)
    if match is None:
        match = re.search(pattern, text, re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def assert_concept(pipeline: TextPipeline, text: str, concept: str, where: str) -> dict[str, str]:
    """Negation, certainty, temporality and experiencer of ``concept`` where it occurs in
    ``text`` (its first occurrence).

    Args:
        pipeline: the rule pipeline.
        text: a sentence or a note.
        concept: a phrase as it appears in the text (``pleural effusion``).
        where: names the input in error messages (``assert.csv: row 4``).

    Returns:
        ``{"negation": affirmed|negated, "certainty": certain|uncertain,
        "temporality": recent|historical|hypothetical, "experiencer": patient|other}``.

    Raises:
        InputError: the concept is empty or does not occur in the text (the message names
            ``where`` only: no note text).
    """
    span = find_concept(text, concept)
    if span is None:
        raise InputError(f"{where}: concept not found in text")
    known = pipeline.lexicon.concepts.get(" ".join(concept.lower().split()))
    type_ = known[0] if known is not None and known[0] != "anatomy" else "finding"
    (entity,) = pipeline.context_of(text, [(span[0], span[1], type_)])
    return {name: getattr(entity, name) for name in ATTRIBUTES}
