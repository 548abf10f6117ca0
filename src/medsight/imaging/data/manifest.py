"""The dataset manifest: one labelled case (an image or a DICOM series) per row.

Two CSV forms are read:

* the synthetic cohort's ``labels.csv``: ``case_id, patient_id, label, series_dir`` (+ sex,
  age, mask), as `medsight synth chest-ct` writes it;
* the general classification manifest ``path, label`` (+ patient_id, split, sex, age) that
  users bring, parsed and validated by `medsight.imaging.io.image_manifest`.

Either form may add a ``modality`` column (DICOM's terms: CT, MR, DX, CR, ...): it tells the
plan what images without a modality in their header (NIfTI, PNG) are, instead of inferring
it from their intensities (see `medsight.imaging.preprocess.modality`).

Paths are relative to the CSV's folder (or absolute). A case without a patient id is its
own patient.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from medsight.errors import InputError
from medsight.imaging.io.image_manifest import read_image_manifest

COHORT_COLUMNS = ("case_id", "patient_id", "label", "series_dir")


@dataclass(frozen=True)
class Case:
    """One labelled image: a DICOM series folder, a DICOM file, NIfTI or PNG."""

    case_id: str
    patient_id: str
    label: str
    image_path: Path
    sex: str = ""
    age: str = ""
    split: str = ""  # "" unless the manifest assigns one
    modality: str = ""  # "" unless the manifest states one


def read_manifest(path: str | Path) -> list[Case]:
    """Read a manifest (a folder holding ``labels.csv``, or the CSV itself) into cases.

    Raises:
        InputError: the file is missing or empty, a required column is absent, a row lacks
            a value, or an id repeats (the message gives the line).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
    if not path.is_file():
        raise InputError(f"{path}: no manifest; run `medsight synth chest-ct DIR` to make one")
    with open(path, newline="", encoding="utf-8-sig") as f:
        columns = csv.DictReader(f).fieldnames or []
    if "series_dir" not in columns and {"path", "label"} <= set(columns):
        return _from_image_manifest(path)
    return _from_cohort_csv(path)


def _modalities(path: Path) -> list[str]:
    """The ``modality`` column, upper-cased, one entry per row ("" where absent)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [{(k or "").strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return [str(row.get("modality") or "").strip().upper() for row in rows]


def _from_image_manifest(path: Path) -> list[Case]:
    cases = []
    records = read_image_manifest(path)
    modalities = _modalities(path)
    if len(modalities) != len(records):  # blank rows counted differently: do not guess
        modalities = [""] * len(records)
    for i, (record, modality) in enumerate(zip(records, modalities, strict=True), start=1):
        case_id = f"row_{i:05d}"
        cases.append(
            Case(
                case_id=case_id,
                patient_id=record.patient_id or case_id,
                label=record.label,
                image_path=record.path,
                sex=record.sex,
                age="" if record.age is None else f"{record.age:g}",
                split=record.split,
                modality=modality,
            )
        )
    return cases


def _from_cohort_csv(path: Path) -> list[Case]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COHORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(missing)} "
                "(expected case_id,patient_id,label,series_dir or path,label)"
            )
        cases, seen = [], set()
        for line, row in enumerate(reader, start=2):
            for column in COHORT_COLUMNS:
                if not (row.get(column) or "").strip():
                    raise InputError(f"{path}:{line}: empty {column}")
            if row["case_id"] in seen:
                raise InputError(f"{path}:{line}: case_id {row['case_id']!r} appears twice")
            seen.add(row["case_id"])
            image = Path(row["series_dir"])
            cases.append(
                Case(
                    case_id=row["case_id"],
                    patient_id=row["patient_id"],
                    label=row["label"].strip(),
                    image_path=image if image.is_absolute() else path.parent / image,
                    sex=row.get("sex", "") or "",
                    age=row.get("age", "") or "",
                    modality=(row.get("modality") or "").strip().upper(),
                )
            )
    if not cases:
        raise InputError(f"{path}: manifest has no rows")
    return cases
