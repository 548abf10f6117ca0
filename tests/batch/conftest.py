"""A small classification run and an archive of DICOM series with two bad inputs in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_kit import PATIENT_FOLDER, write_classify_run


@pytest.fixture(scope="session")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of `batch_kit.write_classify_run`."""
    return write_classify_run(tmp_path_factory.mktemp("batch_run"))


@pytest.fixture(scope="session")
def batch_archive(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six DICOM series, with a corrupt series at position 3 and a text file at 7 (0-based).

    The corrupt series sits in a folder named like a patient and holds a ``.dcm`` file whose
    bytes are not DICOM; the text file, named ``.png``, holds a (made-up) patient's name.
    """
    root = tmp_path_factory.mktemp("archive")
    series = sorted(p for p in (small_dataset / "series").iterdir() if p.is_dir())[:6]
    corrupt = root / PATIENT_FOLDER / "series_1"
    corrupt.mkdir(parents=True)
    (corrupt / "IM0001.dcm").write_bytes(b"not a DICOM file: DOE^JANE " * 20)
    note = root / "DOE^JANE_note.png"
    note.write_text("Patient: DOE^JANE, born 1970-01-01\n")
    return [*series[:3], corrupt, *series[3:], note]
