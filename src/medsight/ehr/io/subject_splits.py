"""The ``--splits`` file of ``medsight ehr import``: subject_id -> train / tuning / held_out."""

from __future__ import annotations

from pathlib import Path

from medsight.ehr.io.csv_tables import read_chunks
from medsight.ehr.io.meds_dataset import SPLITS


def read_splits(path: Path) -> dict[int, str]:
    """subject_id -> split from a ``subject_id,split`` CSV.

    Raises:
        InputError: a missing column, a non-integer subject_id, an unknown split name, or a
            subject listed in two splits.
    """
    splits: dict[int, str] = {}
    for chunk in read_chunks(path, ("subject_id", "split")):
        subjects = chunk.integers("subject_id").to_pylist()
        names = chunk.text("split").to_pylist()
        for i, (subject, name) in enumerate(zip(subjects, names, strict=True)):
            if name not in SPLITS:
                chunk.fail(i, f"split must be one of {', '.join(SPLITS)}")
            if splits.get(subject, name) != name:
                chunk.fail(i, "subject is already listed in another split")
            splits[subject] = name
    return splits
