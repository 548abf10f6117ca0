"""All the rules together: every PHI span of a note, merged (the widest of overlapping spans
wins, a tie goes by type priority)."""

from __future__ import annotations

from collections.abc import Iterable

from medsight.text.deid.name_rules import find_names
from medsight.text.deid.pattern_rules import find_patterned_phi
from medsight.text.deid.phi_span import PHI_TYPES, PhiSpan
from medsight.text.deid.place_rules import find_places
from medsight.text.deid.span_merge import merge_spans


def detect_phi(text: str, extra_spans: Iterable[tuple[int, int, str]] = ()) -> list[PhiSpan]:
    """The PHI spans of ``text``: the rules' plus ``extra_spans`` (e.g. a trained tagger's).

    Args:
        text: the note.
        extra_spans: ``(start, end, type)`` found by someone else; unioned with the rules'
            (recall first). A type outside `PHI_TYPES` is refused.

    Returns:
        Non-overlapping spans sorted by start, without replacements.

    Raises:
        ValueError: an extra span lies outside the text or has an unknown type.
    """
    extra = list(extra_spans)
    for start, end, phi_type in extra:
        if not 0 <= start <= end <= len(text) or phi_type not in PHI_TYPES:
            raise ValueError(
                f"extra span ({start}, {end}, {phi_type}) is not a PHI span of the text"
            )
    spans = find_patterned_phi(text) + find_places(text) + find_names(text) + extra
    return merge_spans(spans)
