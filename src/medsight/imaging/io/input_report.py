"""What a user needs to trust a read, as a JSON-ready record (behind `medsight inspect`).

For one image: kind, modality, shape ``[z, y, x]``, spacing ``(z, y, x)`` mm, orientation
code (the RAS+ directions the voxel axes ``x, y, z`` point to, via nibabel's
``aff2axcodes``: an axial DICOM stack is ``LPS``, a standard NIfTI ``RAS``), intensity range,
slice and series counts, transfer syntax and every warning the reader raised. A 4D NIfTI
(channels or time points) is described one volume at a time, with how many it holds and, in
a Decathlon/nnU-Net dataset, the channel names its ``dataset.json`` declares. For a DICOM
SEG: its segments, referenced series, frames and plane geometry; for a DICOM SR: its
template, coded findings, measurements and referenced study (`dicom_seg_read`,
`dicom_sr_read`). For a collection (MedMNIST, Decathlon/nnU-Net, manifest): what it holds
and how it splits. The record holds no patient data (series are listed by
SeriesInstanceUID so one can be picked; an SR's free text is counted, not copied).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medsight.errors import InputError
from medsight.imaging.io.dicom_seg_read import describe_dicom_seg
from medsight.imaging.io.dicom_series import LARGEST, summarise_series
from medsight.imaging.io.dicom_sr_read import describe_dicom_sr
from medsight.imaging.io.image_manifest import read_image_manifest
from medsight.imaging.io.input_kind import IMAGE_KINDS, detect_kind
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.medmnist import read_medmnist
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.segmentation_dataset import channel_names_near, read_segmentation_dataset
from medsight.imaging.io.volume import Volume


def describe_input(
    path: str | Path,
    series: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    volume: int | None = None,
) -> dict[str, Any]:
    """Read ``path`` and describe it.

    Args:
        path: anything `medsight.imaging.io.read_image` reads, a DICOM SEG or SR, or a
            collection.
        series: for a DICOM folder with several series, the SeriesInstanceUID to describe;
            by default the largest is described (and all are listed).
        limits: size limits for the read.
        volume: for a 4D NIfTI, the volume (channel) to describe; by default the first.

    Returns:
        A JSON-serialisable record (see the module docstring).

    Raises:
        InputError: the path cannot be read (the reader's message), or ``volume`` is given
            for anything but a NIfTI or is out of range.
    """
    path = Path(path)
    kind = detect_kind(path)
    if volume is not None and kind != "nifti":
        raise InputError(f"{path}: {kind}, not a 4D NIfTI: it has no volumes to pick (--volume)")
    if kind in IMAGE_KINDS:
        listed: list[dict[str, Any]] = []
        chosen = series
        if kind == "dicom-folder":
            infos = summarise_series(path, limits)
            listed = [asdict(i) for i in infos]
            if chosen is None and len(infos) > 1:
                chosen = LARGEST
        picked = 0 if kind == "nifti" and volume is None else volume
        image = read_image(path, series=chosen, limits=limits, volume=picked)
        report = describe_volume(path, image)
        if kind == "dicom-folder":
            report["series"] = listed
        if "n_volumes" in image.meta:
            _describe_volumes(report, path, image, chosen_by_user=volume is not None)
        return report
    if kind == "dicom-seg":
        return describe_dicom_seg(path)
    if kind == "dicom-sr":
        return describe_dicom_sr(path)
    if kind == "medmnist":
        return _medmnist(path, limits)
    if kind == "segmentation-dataset":
        return _segmentation(path)
    if kind == "image-manifest":
        return _manifest(path)
    raise InputError(
        f"{path}: not a recognised input (DICOM with a DICM prefix, NIfTI, PNG, JPEG, "
        "MedMNIST .npz, Decathlon/nnU-Net folder or manifest .csv)"
    )


def _describe_volumes(
    report: dict[str, Any], path: Path, image: Volume, chosen_by_user: bool
) -> None:
    """Add to ``report`` how many volumes a 4D image holds, which one it describes and, in
    a Decathlon/nnU-Net dataset, what its channels are called."""
    n, index = int(image.meta["n_volumes"]), int(image.meta["volume"])
    report["n_volumes"] = n
    report["volume"] = index
    found = channel_names_near(path)
    if found is not None:
        spec_path, names = found
        if sorted(names) == list(range(n)):
            report["channel_names"] = {str(k): v for k, v in names.items()}
            report["channel"] = names[index]
        else:
            report["warnings"].append(
                f"{spec_path.parent.name}/{spec_path.name} names {len(names)} channel(s), "
                f"the image holds {n} volumes"
            )
    if not chosen_by_user:
        report["warnings"].append(
            f"{n} volumes: volume {index} is described (pick another with --volume N)"
        )


def describe_volume(path: Path, volume: Volume) -> dict[str, Any]:
    """The record for one image already read."""
    meta = volume.meta
    finite = volume.array[np.isfinite(volume.array)]
    intensity = (
        {
            "min": float(finite.min()),
            "max": float(finite.max()),
            "mean": float(finite.mean(dtype=np.float64)),
        }
        if finite.size
        else {"min": None, "max": None, "mean": None}
    )
    affine = volume.affine_ras()
    return {
        "path": str(path),
        "kind": meta.get("kind", "unknown"),
        "modality": volume.modality,
        "shape_zyx": list(volume.shape),
        "channels": volume.channels,
        "spacing_mm_zyx": [round(float(s), 6) for s in volume.spacing_mm],
        "orientation": "".join(str(c) for c in nib.orientations.aff2axcodes(affine)),
        "origin_lps_mm": [round(float(v), 4) for v in volume.origin_lps],
        "affine_ras": np.round(affine, 6).tolist(),
        "intensity": intensity,
        "n_slices": int(meta.get("n_slices", volume.shape[0])),
        "n_series": int(meta.get("n_series", 1)),
        "transfer_syntax": meta.get("transfer_syntax", ""),
        "photometric": meta.get("photometric", ""),
        "nifti_version": meta.get("nifti_version"),
        "warnings": list(meta.get("warnings", [])),
    }


def _medmnist(path: Path, limits: ReadLimits) -> dict[str, Any]:
    splits = read_medmnist(path, limits)
    return {
        "path": str(path),
        "kind": "medmnist",
        "splits": {
            name: {
                "n": len(split),
                "image_shape": list(split.images.shape[1:]),
                "dimensions": "3D" if split.is_3d else "2D",
                "colour": split.is_colour,
                "label_columns": int(split.labels.shape[1]),
                "label_counts": {
                    str(k): int(v) for k, v in sorted(Counter(split.labels[:, 0].tolist()).items())
                },
            }
            for name, split in splits.items()
        },
        "warnings": [],
    }


def _segmentation(path: Path) -> dict[str, Any]:
    dataset = read_segmentation_dataset(path)
    return {
        "path": str(path),
        "kind": "segmentation-dataset",
        "layout": dataset.layout,
        "name": dataset.name,
        "channels": {str(k): v for k, v in dataset.channel_names.items()},
        "labels": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataset.labels.items()},
        "n_training": len(dataset.training),
        "n_test": len(dataset.test),
        "file_ending": dataset.file_ending,
        "warnings": list(dataset.warnings),
    }


def _manifest(path: Path) -> dict[str, Any]:
    records = read_image_manifest(path)
    return {
        "path": str(path),
        "kind": "image-manifest",
        "n_records": len(records),
        "labels": dict(sorted(Counter(r.label for r in records).items())),
        "splits": dict(sorted(Counter(r.split or "(none)" for r in records).items())),
        "n_patients": len({r.patient_id for r in records if r.patient_id}),
        "warnings": [],
    }
