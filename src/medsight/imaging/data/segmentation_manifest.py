"""Segmentation datasets: images with label maps, from a manifest or a Decathlon/nnU-Net folder.

Three forms are read into the same list of `SegmentationCase`:

* a folder with ``dataset.json`` (Medical Segmentation Decathlon or nnU-Net v2 layout, see
  `medsight.imaging.io.segmentation_dataset`): label names from ``dataset.json``;
* a manifest CSV with an image column (``image``, ``path`` or ``series_dir``) and a ``mask``
  column (a label map: NIfTI, or anything `read_image` reads), optionally ``case_id``,
  ``patient_id`` and ``split``; label names from ``labels.json`` beside the CSV
  (``{"lung": 1, "nodule": 2}``) or from the caller (``--labels lung=1,nodule=2``);
* a folder holding such a manifest as ``labels.csv`` (what `medsight synth chest-ct` writes,
  with its ``labels.json``).

Label values are positive integers; 0 is background. Paths are relative to the CSV's
folder or absolute.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from medsight.errors import InputError
from medsight.imaging.io.segmentation_dataset import read_segmentation_dataset

IMAGE_COLUMNS = ("image", "path", "series_dir")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SegmentationCase:
    """One image and its label map."""

    case_id: str
    patient_id: str
    image_path: Path
    mask_path: Path
    split: str = ""  # "" unless the manifest assigns one


@dataclass(frozen=True)
class SegmentationSource:
    """The cases of a dataset and the names of its label values (background excluded)."""

    cases: list[SegmentationCase]
    labels: dict[str, int]
    source: Path


def parse_labels(text: str) -> dict[str, int]:
    """``"lung=1,nodule=2"`` -> ``{"lung": 1, "nodule": 2}``.

    Raises:
        InputError: an item is not ``name=positive integer``, or a name or value repeats.
    """
    labels: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise InputError(f"--labels {text}: {item!r} is not name=value (value >= 1)")
        labels[name.strip()] = int(value)
    return check_labels(labels, "--labels")


def check_labels(labels: dict[str, int], where: str) -> dict[str, int]:
    """``labels`` if every value is a distinct positive integer, else an `InputError`."""
    if not labels:
        raise InputError(f"{where}: no labels declared (need at least one structure)")
    values = list(labels.values())
    bad = [n for n, v in labels.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise InputError(f"{where}: label {bad[0]!r} needs a positive integer value")
    if len(set(values)) != len(values):
        raise InputError(f"{where}: two labels share a value")
    return dict(sorted(labels.items(), key=lambda item: item[1]))


def read_segmentation_source(
    data: str | Path, labels: dict[str, int] | None = None
) -> SegmentationSource:
    """Read ``data`` (see the module docstring) into cases and label names.

    Args:
        data: a dataset folder (``dataset.json`` or ``labels.csv``) or a manifest CSV.
        labels: label names to use instead of the dataset's own declaration.

    Raises:
        InputError: nothing readable at ``data``; a required column is missing or empty; an
            id repeats; a listed file does not exist; no labels are declared; multi-channel
            images or label regions (not supported yet).
    """
    data = Path(data)
    if data.is_dir() and (data / "dataset.json").is_file():
        return _from_dataset_folder(data, labels)
    csv_path = data / "labels.csv" if data.is_dir() else data
    if not csv_path.is_file():
        raise InputError(
            f"{data}: no dataset.json or manifest CSV (segmentation needs images with masks)"
        )
    cases = read_segmentation_csv(csv_path)
    if labels is None:
        declared = csv_path.parent / "labels.json"
        if not declared.is_file():
            raise InputError(
                f"{csv_path}: labels not declared; write {declared.name} beside it "
                '({"lung": 1, "nodule": 2}) or pass --labels lung=1,nodule=2'
            )
        try:
            raw = json.loads(declared.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{declared}: not valid JSON ({type(exc).__name__})") from None
        if not isinstance(raw, dict):
            raise InputError(f"{declared}: expected an object of name: value")
        labels = check_labels({str(k): v for k, v in raw.items() if v != 0}, str(declared))
    return SegmentationSource(cases, check_labels(labels, "labels"), csv_path)


def _from_dataset_folder(root: Path, labels: dict[str, int] | None) -> SegmentationSource:
    dataset = read_segmentation_dataset(root)
    if len(dataset.channel_names) > 1:
        raise InputError(
            f"{root / 'dataset.json'}: {len(dataset.channel_names)} input channels; "
            "only single-channel images are supported for now"
        )
    if labels is None:
        declared: dict[str, int] = {}
        for name, value in dataset.labels.items():
            if isinstance(value, tuple):
                raise InputError(
                    f"{root / 'dataset.json'}: label {name!r} is a region (a list of values); "
                    "regions are not supported yet"
                )
            if value != 0:
                declared[name] = value
        labels = declared
    cases = []
    for case in dataset.training:
        if case.label is None:
            continue
        if len(case.images) != 1:
            raise InputError(f"{root}: case {case.case_id} has several channel files")
        cases.append(SegmentationCase(case.case_id, case.case_id, case.images[0], case.label))
    if not cases:
        raise InputError(f"{root / 'dataset.json'}: no training cases with labels")
    return SegmentationSource(cases, check_labels(labels, str(root / "dataset.json")), root)


def read_segmentation_csv(path: Path) -> list[SegmentationCase]:
    """The cases of a segmentation manifest CSV (see the module docstring).

    Raises:
        InputError: a required column is missing or empty, an id repeats, a split is
            unknown, or a listed file does not exist (the message gives the line).
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        image_column = next((c for c in IMAGE_COLUMNS if c in columns), None)
        if image_column is None or "mask" not in columns:
            raise InputError(
                f"{path}: a segmentation manifest needs an image column "
                f"({'/'.join(IMAGE_COLUMNS)}) and a mask column"
            )
        cases, seen = [], set()
        for line, row in enumerate(reader, start=2):
            image, mask = (row.get(image_column) or "").strip(), (row.get("mask") or "").strip()
            if not image or not mask:
                raise InputError(f"{path}:{line}: empty {image_column if not image else 'mask'}")
            case_id = (row.get("case_id") or "").strip() or f"row_{line - 1:05d}"
            if case_id in seen:
                raise InputError(f"{path}:{line}: case_id {case_id!r} appears twice")
            seen.add(case_id)
            split = (row.get("split") or "").strip().lower()
            if split and split not in SPLITS:
                raise InputError(f"{path}:{line}: split {split!r} is not train, val or test")
            image_path, mask_path = (_resolve(path, p) for p in (image, mask))
            for p in (image_path, mask_path):
                if not p.exists():
                    raise InputError(f"{path}:{line}: {p.name} does not exist")
            cases.append(
                SegmentationCase(
                    case_id=case_id,
                    patient_id=(row.get("patient_id") or "").strip() or case_id,
                    image_path=image_path,
                    mask_path=mask_path,
                    split=split,
                )
            )
    if not cases:
        raise InputError(f"{path}: manifest has no rows")
    return cases


def _resolve(csv_path: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else csv_path.parent / p
