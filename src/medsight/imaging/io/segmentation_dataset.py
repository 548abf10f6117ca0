"""Read a segmentation dataset in Medical Segmentation Decathlon or nnU-Net v2 layout.

Both keep ``dataset.json`` beside ``imagesTr/``, ``labelsTr/`` (and optionally ``imagesTs/``):

* Decathlon: ``dataset.json`` lists cases (``"training": [{"image": "./imagesTr/x.nii.gz",
  "label": "./labelsTr/x.nii.gz"}]``, ``"test": ["./imagesTs/y.nii.gz"]``), channels under
  ``"modality"`` and labels as ``{"0": "background", "1": "liver"}``; one image file may
  hold every channel (4D).
* nnU-Net v2: cases are found by name, ``imagesTr/{case}_{0000..}{file_ending}`` (one file
  per channel) and ``labelsTr/{case}{file_ending}``; channels under ``"channel_names"`` and
  labels as ``{"background": 0, "liver": 1}`` (a region is a list of labels).

`read_segmentation_dataset` returns the same record for both, with every referenced file
checked to exist; it reads no image (that is `medsight.imaging.io.read_image`'s job, per file).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsight.errors import InputError


@dataclass(frozen=True)
class SegmentationCase:
    """One case: its image file(s), one per channel (or one file holding all), and label."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None


@dataclass(frozen=True)
class SegmentationDataset:
    """A dataset's description and cases."""

    root: Path
    layout: str  # "decathlon" | "nnunetv2"
    name: str
    channel_names: dict[int, str]
    labels: dict[str, int | tuple[int, ...]]
    file_ending: str
    training: tuple[SegmentationCase, ...]
    test: tuple[SegmentationCase, ...]
    warnings: tuple[str, ...] = field(default=())


def read_segmentation_dataset(folder: str | Path) -> SegmentationDataset:
    """Read ``folder/dataset.json`` and list the cases it describes.

    Raises:
        InputError: no ``dataset.json``, it is not valid JSON or lacks required keys, a
            label or channel entry is malformed, or a referenced image or label file is
            missing (the message names it).
    """
    root = Path(folder)
    spec_path = root / "dataset.json"
    if not spec_path.is_file():
        raise InputError(f"{root}: no dataset.json (not a Decathlon/nnU-Net dataset folder)")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{spec_path}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(spec, dict):
        raise InputError(f"{spec_path}: expected a JSON object")
    if "training" in spec:
        return _decathlon(root, spec_path, spec)
    if "channel_names" in spec:
        return _nnunet_v2(root, spec_path, spec)
    raise InputError(
        f"{spec_path}: neither a Decathlon ('training') nor an nnU-Net v2 ('channel_names') "
        "dataset.json"
    )


def _decathlon(root: Path, spec_path: Path, spec: dict[str, Any]) -> SegmentationDataset:
    channels = _channels(spec.get("modality", {}), "modality", spec_path)
    labels: dict[str, int | tuple[int, ...]] = {}
    raw_labels = spec.get("labels", {})
    if not isinstance(raw_labels, dict):
        raise InputError(f"{spec_path}: 'labels' is not an object")
    for key, name in raw_labels.items():
        if not str(key).isdigit():
            raise InputError(f"{spec_path}: label key {key!r} is not an integer")
        labels[str(name)] = int(key)
    training = []
    entries = spec["training"]
    if not isinstance(entries, list):
        raise InputError(f"{spec_path}: 'training' is not a list")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise InputError(f"{spec_path}: training[{n}] lacks 'image' or 'label'")
        image = _existing(root, entry["image"], spec_path)
        training.append(
            SegmentationCase(_case_id(image), (image,), _existing(root, entry["label"], spec_path))
        )
    test = []
    for n, entry in enumerate(spec.get("test", [])):
        if not isinstance(entry, str):
            raise InputError(f"{spec_path}: test[{n}] is not a path")
        image = _existing(root, entry, spec_path)
        test.append(SegmentationCase(_case_id(image), (image,), None))
    warnings = _count_warning(spec, len(training))
    return SegmentationDataset(
        root=root,
        layout="decathlon",
        name=str(spec.get("name", root.name)),
        channel_names=channels,
        labels=labels,
        file_ending=".nii.gz",
        training=tuple(training),
        test=tuple(test),
        warnings=warnings,
    )


def _nnunet_v2(root: Path, spec_path: Path, spec: dict[str, Any]) -> SegmentationDataset:
    channels = _channels(spec["channel_names"], "channel_names", spec_path)
    ending = spec.get("file_ending")
    if not isinstance(ending, str) or not ending.startswith("."):
        raise InputError(f"{spec_path}: 'file_ending' is missing or not like '.nii.gz'")
    labels: dict[str, int | tuple[int, ...]] = {}
    raw_labels = spec.get("labels")
    if not isinstance(raw_labels, dict) or not raw_labels:
        raise InputError(f"{spec_path}: 'labels' is missing or not an object")
    for name, value in raw_labels.items():
        if isinstance(value, int) and not isinstance(value, bool):
            labels[str(name)] = value
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            labels[str(name)] = tuple(value)
        else:
            raise InputError(f"{spec_path}: label {name!r} is not an integer or list of integers")
    training = _nnunet_cases(root / "imagesTr", root / "labelsTr", channels, ending, spec_path)
    if not training:
        raise InputError(f"{root / 'imagesTr'}: no images named CASE_0000{ending}")
    test = _nnunet_cases(root / "imagesTs", None, channels, ending, spec_path)
    return SegmentationDataset(
        root=root,
        layout="nnunetv2",
        name=str(spec.get("name", root.name)),
        channel_names=channels,
        labels=labels,
        file_ending=ending,
        training=tuple(training),
        test=tuple(test),
        warnings=_count_warning(spec, len(training)),
    )


def _nnunet_cases(
    images: Path,
    labels: Path | None,
    channels: dict[int, str],
    ending: str,
    spec_path: Path,
) -> list[SegmentationCase]:
    if not images.is_dir():
        return []
    pattern = re.compile(rf"^(?P<case>.+)_(?P<channel>\d{{4}}){re.escape(ending)}$")
    found: dict[str, dict[int, Path]] = {}
    for p in sorted(images.iterdir()):
        match = pattern.match(p.name)
        if match and not p.name.startswith("."):
            found.setdefault(match["case"], {})[int(match["channel"])] = p
    cases = []
    for case_id, files in sorted(found.items()):
        missing = sorted(set(channels) - set(files))
        if missing:
            raise InputError(
                f"{images}: case {case_id} lacks channel {missing[0]:04d} "
                f"({case_id}_{missing[0]:04d}{ending})"
            )
        label = None
        if labels is not None:
            label = labels / f"{case_id}{ending}"
            if not label.is_file():
                raise InputError(f"{label}: missing label for case {case_id}")
        cases.append(SegmentationCase(case_id, tuple(files[c] for c in sorted(channels)), label))
    return cases


def channel_names_near(image: str | Path) -> tuple[Path, dict[int, str]] | None:
    """The channel names of the dataset an image file belongs to, if it is in one.

    Looks for ``dataset.json`` beside the file, then one and two folders up (``imagesTr/``
    sits below it), and reads only its channel declaration (``channel_names`` for nnU-Net
    v2, ``modality`` for the Decathlon); the rest of the dataset is not checked.

    Returns:
        The ``dataset.json`` found and ``{channel index: name}``, or None when there is no
        such file or it declares no readable channels.
    """
    for folder in list(Path(image).resolve().parents)[:3]:
        spec_path = folder / "dataset.json"
        if not spec_path.is_file():
            continue
        try:
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
            key = "channel_names" if "channel_names" in spec else "modality"
            return spec_path, _channels(spec.get(key), key, spec_path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, InputError):
            return None
    return None


def _channels(raw: Any, key: str, spec_path: Path) -> dict[int, str]:
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{spec_path}: '{key}' is missing or not an object")
    channels = {}
    for index, name in raw.items():
        if not str(index).isdigit():
            raise InputError(f"{spec_path}: {key} key {index!r} is not a channel number")
        channels[int(index)] = str(name)
    return dict(sorted(channels.items()))


def _existing(root: Path, relative: Any, spec_path: Path) -> Path:
    if not isinstance(relative, str) or not relative.strip():
        raise InputError(f"{spec_path}: a case path is not a string")
    path = (root / relative).resolve() if not Path(relative).is_absolute() else Path(relative)
    if not path.is_file():
        raise InputError(f"{path}: listed in {spec_path.name} but missing")
    return path


def _case_id(image: Path) -> str:
    name = image.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".tif"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return image.stem


def _count_warning(spec: dict[str, Any], found: int) -> tuple[str, ...]:
    claimed = spec.get("numTraining")
    if isinstance(claimed, int) and claimed != found:
        return (f"numTraining says {claimed}, {found} training case(s) found",)
    return ()
