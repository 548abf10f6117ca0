"""Read a classification manifest: a CSV with one labelled image (file or series) per row.

Columns: ``path`` and ``label`` are required; ``patient_id``, ``split`` (``train``, ``val``,
``test``), ``sex`` and ``age`` are optional; other columns are ignored. ``path`` is relative
to the CSV's folder (or absolute) and may name any input `read_image` reads: a DICOM file
or series folder, a NIfTI, a PNG/JPEG. Values are checked as they are read, with the line
number in the message, so a typo is found before training starts, not after.

(`medsight.imaging.data.manifest` reads the synthetic cohort's ``labels.csv``, keyed by
``series_dir``; this is the general, user-facing format.)
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from medsight.errors import InputError

REQUIRED_COLUMNS = ("path", "label")
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "training": "train", "testing": "test"}
_SEX = {"m": "M", "male": "M", "f": "F", "female": "F", "o": "O", "other": "O", "u": "U"}


@dataclass(frozen=True)
class ImageRecord:
    """One labelled image."""

    path: Path
    label: str
    patient_id: str = ""
    split: str = ""  # "" (not assigned), "train", "val" or "test"
    sex: str = ""  # "", "M", "F", "O" or "U"
    age: float | None = None  # years


def read_image_manifest(path: str | Path, check_files: bool = True) -> list[ImageRecord]:
    """Read the manifest at ``path``.

    Args:
        path: the CSV file.
        check_files: require every ``path`` to exist.

    Returns:
        The records in file order.

    Raises:
        InputError: the file is missing or empty; a required column is absent; a row has an
            empty path or label, an unknown split or sex, a non-numeric or negative age, a
            path listed twice, or (with ``check_files``) a path that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = [
                ({k.strip(): (v or "").strip() for k, v in r.items() if k}, n)
                for n, r in enumerate(reader, start=2)
            ]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV ({exc})") from None
    records: list[ImageRecord] = []
    seen: set[Path] = set()
    for row, line in rows:
        where = f"{path}:{line}"
        for column in REQUIRED_COLUMNS:
            if not row.get(column):
                raise InputError(f"{where}: empty {column}")
        image = Path(row["path"])
        image = image if image.is_absolute() else path.parent / image
        if image in seen:
            raise InputError(f"{where}: path {row['path']} is listed twice")
        seen.add(image)
        if check_files and not image.exists():
            raise InputError(f"{where}: {image} does not exist")
        records.append(
            ImageRecord(
                path=image,
                label=row["label"],
                patient_id=row.get("patient_id", ""),
                split=_split(row.get("split", ""), where),
                sex=_sex(row.get("sex", ""), where),
                age=_age(row.get("age", ""), where),
            )
        )
    if not records:
        raise InputError(f"{path}: manifest has no rows")
    return records


def _split(value: str, where: str) -> str:
    value = _SPLIT_ALIASES.get(value.lower(), value.lower())
    if value and value not in SPLIT_NAMES:
        raise InputError(f"{where}: split {value!r} is not one of {', '.join(SPLIT_NAMES)}")
    return value


def _sex(value: str, where: str) -> str:
    if not value:
        return ""
    if value.lower() not in _SEX:
        raise InputError(f"{where}: sex {value!r} is not M, F, O or U")
    return _SEX[value.lower()]


def _age(value: str, where: str) -> float | None:
    if not value:
        return None
    try:
        age = float(value.rstrip("Yy"))
    except ValueError:
        raise InputError(f"{where}: age {value!r} is not a number") from None
    if not math.isfinite(age) or age < 0:
        raise InputError(f"{where}: age {value!r} is not a non-negative number")
    return age
