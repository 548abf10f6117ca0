"""Predict one note file the way the service and the viewer expect: score its text, and keep
a copy of exactly that text as ``note.txt`` beside the result (the viewer highlights the
result's entities on it). Both text tasks' loaded runs predict through here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medsight.runs.atomic import write_text_atomic
from medsight.tasks.results import TextResult
from medsight.text.io.text_files import read_text_note

#: the scored note's copy in a result folder
NOTE_FILE = "note.txt"


def predict_note_file(source: Path, out: Path, score: Callable[[str], TextResult]) -> TextResult:
    """``score`` the note in ``source`` and write the scored text to ``out/note.txt``.

    Raises:
        InputError: the note is missing, too large, not text or empty.
    """
    text = read_text_note(source).text
    result = score(text)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / NOTE_FILE, text)
    result.files = [NOTE_FILE]
    return result
