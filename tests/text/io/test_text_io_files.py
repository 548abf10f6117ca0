"""Plain-text notes: a file, a folder of them; empty, oversized and binary files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.io.read_notes import read_notes
from medsight.text.io.text_files import read_text_note


def test_a_text_file_is_one_note_named_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "ct_0001.txt"
    path.write_bytes(b"\xef\xbb\xbfFINDINGS: 6 mm nodule.\r\nIMPRESSION: follow up.\r\n")
    [note] = list(read_notes(path))
    assert note.note_id == "ct_0001"
    assert note.text == "FINDINGS: 6 mm nodule.\nIMPRESSION: follow up.\n"
    assert note.source == str(path)


def test_a_folder_is_read_in_name_order_ignoring_other_files(tmp_path: Path) -> None:
    for name, text in [("b.txt", "second"), ("a.txt", "first"), ("c.pdf", "x"), (".d.txt", "h")]:
        (tmp_path / name).write_text(text)
    assert [(n.note_id, n.text) for n in read_notes(tmp_path)] == [("a", "first"), ("b", "second")]


def test_a_folder_without_notes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="no .txt notes"):
        read_notes(tmp_path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n"], ids=["empty", "blank"])
def test_an_empty_note_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"empty\.txt: empty note"):
        read_text_note(path)


def test_an_oversized_file_is_refused_before_it_is_read(
    tmp_path: Path, small_note_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("x" * (small_note_limit * 4 + 1))

    def no_reading(self: Path) -> bytes:
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(InputError, match=r"huge\.txt: 401 bytes is over the 400-byte limit"):
        read_text_note(path)


def test_a_note_over_the_character_limit_is_refused(tmp_path: Path, small_note_limit: int) -> None:
    path = tmp_path / "long.txt"
    path.write_text("y" * (small_note_limit + 1))
    with pytest.raises(InputError, match="101 characters is over the limit"):
        read_text_note(path)


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match=r"image\.txt: binary content"):
        read_text_note(path)


def test_reads_the_radlabels_reports(repo_root_text: Path) -> None:
    reports = repo_root_text / "radlabels" / "reports"
    notes = list(read_notes(reports))
    assert len(notes) == 1000
    assert all(n.text.strip() and "\r" not in n.text for n in notes)
    assert notes[0].note_id == "synth_0001"
