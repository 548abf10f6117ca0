"""Plain-text notes: one ``.txt`` file is one note (``note_id`` = the file's stem), and a
folder of them is read in name order.

A file's size is checked before it is read, so a 100 MB "note" costs a ``stat``, not 100 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsight.errors import InputError
from medsight.text.io.decode import decode_text
from medsight.text.io.note import Note, check_note_bytes, check_note_text


def read_text_note(path: Path, *, kind: str | None = None) -> Note:
    """One note from a text file.

    Raises:
        InputError: missing or unreadable file, over the size limit, binary or of an
            encoding that cannot be told, empty.
    """
    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(f"{where}: no such file") from None
    check_note_bytes(size, where)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{where}: cannot be read ({exc.strerror})") from None
    check_note_bytes(len(raw), where)
    text = check_note_text(decode_text(raw, where), where)
    return Note(note_id=path.stem, text=text, kind=kind, source=where)


def text_files(folder: Path) -> list[Path]:
    """The ``.txt`` files directly in ``folder``, sorted by name (hidden files skipped).

    Raises:
        InputError: the folder holds no ``.txt`` file, or two with the same stem.
    """
    files = sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() == ".txt" and not p.name.startswith(".")
    )
    if not files:
        raise InputError(f"{folder}: no .txt notes in this folder")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise InputError(f"{path}: same note_id (file stem) as {stems[path.stem].name}")
        stems[path.stem] = path
    return files


def read_text_folder(folder: Path, *, kind: str | None = None) -> Iterator[Note]:
    """The notes of a folder of ``.txt`` files, one at a time, in name order.

    Raises:
        InputError: as `text_files` and `read_text_note`.
    """
    for path in text_files(folder):
        yield read_text_note(path, kind=kind)
