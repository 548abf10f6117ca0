"""The classification manifest: ``labels.csv`` with one row per case (one series).

Columns: ``case_id, patient_id, label, sex, age, series_dir`` (extra columns are kept);
``series_dir`` is relative to the CSV's folder (or absolute).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from medsight.errors import InputError

REQUIRED_COLUMNS = ("case_id", "patient_id", "label", "series_dir")


@dataclass(frozen=True)
class Case:
    """One labelled series."""

    case_id: str
    patient_id: str
    label: str
    series_dir: Path
    sex: str = ""
    age: str = ""


def read_manifest(path: str | Path) -> list[Case]:
    """Read ``labels.csv`` into cases.

    Raises:
        InputError: the file is missing or empty, a required column is absent, a row lacks
            a value, or a case_id repeats.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
    if not path.is_file():
        raise InputError(f"{path}: no manifest; run `medsight synth chest-ct DIR` to make one")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        cases, seen = [], set()
        for line, row in enumerate(reader, start=2):
            for column in REQUIRED_COLUMNS:
                if not (row.get(column) or "").strip():
                    raise InputError(f"{path}:{line}: empty {column}")
            if row["case_id"] in seen:
                raise InputError(f"{path}:{line}: case_id {row['case_id']!r} appears twice")
            seen.add(row["case_id"])
            series = Path(row["series_dir"])
            cases.append(
                Case(
                    case_id=row["case_id"],
                    patient_id=row["patient_id"],
                    label=row["label"].strip(),
                    series_dir=series if series.is_absolute() else path.parent / series,
                    sex=row.get("sex", "") or "",
                    age=row.get("age", "") or "",
                )
            )
    if not cases:
        raise InputError(f"{path}: manifest has no rows")
    return cases
