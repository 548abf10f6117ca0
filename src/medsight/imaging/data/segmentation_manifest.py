"""Segmentation datasets: images with label maps, from a manifest or a Decathlon/nnU-Net folder.

Three forms are read into the same list of `SegmentationCase`:

* a folder with ``dataset.json`` (Medical Segmentation Decathlon or nnU-Net v2 layout, see
  `medsight.imaging.io.segmentation_dataset`): label names from ``dataset.json``;
* a manifest CSV with an image column (``image``, ``path`` or ``series_dir``) and a ``mask``
  column (a label map: NIfTI, anything `read_image` reads, or a DICOM SEG drawn on the
  image), optionally ``case_id``, ``patient_id`` and ``split``; label names from
  ``labels.json`` beside the CSV (``{"lung": 1, "nodule": 2}``), from the caller
  (``--labels lung=1,nodule=2``) or, when neither names them, from the SegmentLabels of
  the DICOM SEG masks;
* a folder holding such a manifest as ``labels.csv`` (what `medsight synth chest-ct` writes,
  with its ``labels.json``).

Label values are positive integers; 0 is background. Paths are relative to the CSV's
folder or absolute.

A DICOM SEG mask (how annotations leave PACS viewers, OHIF and 3D Slicer) numbers its
segments 1..N in the order they were drawn, so the same structure may have another number
in another file. Its segments are matched to the labels by name (SegmentLabel, case, ``_``
and ``-`` ignored) when every one of its names is declared, else by number (segment ``n``
is label value ``n``); the case records the result as ``segment_values``. Labels taken
from the SEGs themselves get the segment number of the first file naming them. Only the
SEG headers are read here; the pixels and the geometry check come with the image
(`medsight.imaging.data.segmentation_cache`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path

from medsight.errors import InputError
from medsight.imaging.io.dicom_seg_read import dicom_seg_segments
from medsight.imaging.io.input_kind import detect_kind
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
    #: DICOM SEG masks only: (segment number, label value) for every segment it describes
    segment_values: tuple[tuple[int, int], ...] = ()


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
            id repeats; a listed file does not exist; no labels are declared; a DICOM SEG
            mask is unreadable, has a segment matching no declared label, or numbers a
            structure the way another SEG numbers a different one (labels undeclared);
            multi-channel images or label regions (not supported yet).
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
    segments = _seg_segments(cases)
    declared = csv_path.parent / "labels.json"
    if labels is None and not declared.is_file() and segments:
        labels = _labels_from_segs(cases, segments)
    if labels is None:
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
    labels = check_labels(labels, "labels")
    return SegmentationSource(_match_segments(cases, segments, labels), labels, csv_path)


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
    labels = check_labels(labels, str(root / "dataset.json"))
    return SegmentationSource(_match_segments(cases, _seg_segments(cases), labels), labels, root)


def _seg_segments(cases: list[SegmentationCase]) -> dict[int, dict[int, str]]:
    """``{case index: {segment number: name}}`` for the cases whose mask is a DICOM SEG."""
    found = {}
    for i, case in enumerate(cases):
        if case.mask_path.is_file() and detect_kind(case.mask_path) == "dicom-seg":
            found[i] = {
                n: name or f"segment {n}" for n, name in dicom_seg_segments(case.mask_path).items()
            }
    return found


def _name_key(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def _labels_from_segs(
    cases: list[SegmentationCase], segments: dict[int, dict[int, str]]
) -> dict[str, int]:
    """Label names from the SEGs' SegmentLabels, each valued as in the first SEG naming it."""
    labels: dict[str, int] = {}
    named_in: dict[str, Path] = {}
    for i, numbered in segments.items():
        for number, name in sorted(numbered.items()):
            if _name_key(name) in named_in:
                continue
            taken = next((n for n, v in labels.items() if v == number), None)
            if taken is not None:
                raise InputError(
                    f"{cases[i].mask_path}: segment {number} is {name!r} here but {taken!r} in "
                    f"{named_in[_name_key(taken)].name}; declare every label, e.g. --labels "
                    f"{_suggested_labels(labels, segments)}"
                )
            labels[name] = number
            named_in[_name_key(name)] = cases[i].mask_path
    return labels


def _suggested_labels(labels: dict[str, int], segments: dict[int, dict[int, str]]) -> str:
    """``--labels`` text naming every SEG structure: those valued so far, then the rest."""
    suggested = dict(labels)
    keys = {_name_key(name) for name in suggested}
    for numbered in segments.values():
        for _, name in sorted(numbered.items()):
            if _name_key(name) not in keys:
                suggested[name] = max(suggested.values()) + 1
                keys.add(_name_key(name))
    return ",".join(f"{name}={value}" for name, value in suggested.items())


def _match_segments(
    cases: list[SegmentationCase], segments: dict[int, dict[int, str]], labels: dict[str, int]
) -> list[SegmentationCase]:
    """The cases with each SEG mask's segment numbers matched to label values (see above)."""
    by_name = {_name_key(name): value for name, value in labels.items()}
    matched = list(cases)
    for i, numbered in segments.items():
        if all(_name_key(name) in by_name for name in numbered.values()):
            values = {n: by_name[_name_key(name)] for n, name in numbered.items()}
        else:
            unknown = [f"{n} {name!r}" for n, name in numbered.items() if n not in labels.values()]
            if unknown:
                declared = ", ".join(f"{k}={v}" for k, v in labels.items())
                raise InputError(
                    f"{cases[i].mask_path}: segment(s) {', '.join(unknown)} match no label "
                    f"by name or value (labels: {declared})"
                )
            values = {n: n for n in numbered}
        matched[i] = replace(cases[i], segment_values=tuple(sorted(values.items())))
    return matched


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
