"""Read, check and preprocess image + label-map pairs into the on-disk cache.

A pair is checked before anything is trained: the label map must lie on the image's voxel
grid (same shape, spacing, origin and orientation), hold whole numbers only, and use only
declared label values. A DICOM SEG mask is placed onto the image's grid by the frames it
references (or their positions) after its own geometry check (`read_dicom_seg_on_image`),
and its segment numbers become the label values the manifest matched them to. Label
values are stored as channel indices (``label_values[k]`` is channel ``k + 1``; 0 is
background), so a dataset labelled ``{1, 3}`` trains a 3-channel network. The image goes
through the run's `PreprocessContract` (resample, normalise); the label map is resampled
to the same grid by nearest neighbour.

Entries are keyed like `VolumeCache`'s (content of both inputs + contract + label values)
and written atomically: ``{key}.image.npy`` (float16) and ``{key}.labels.npy`` (uint8).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.data.segmentation_manifest import SegmentationCase
from medsight.imaging.data.volume_cache import CachedVolumes, input_digest
from medsight.imaging.data.volume_loading import SPAWN
from medsight.imaging.io.dicom_seg_read import read_dicom_seg_on_image
from medsight.imaging.io.input_kind import detect_kind
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import PreprocessContract, apply_contract
from medsight.imaging.preprocess.geometry import resample_to_spacing, resampled_shape
from medsight.runs.atomic import atomic_path

#: working bytes per voxel of a preprocessed case: the float32 image and its resampling
#: buffer, the labels, and per-class float32 probabilities for up to 4 classes at inference
BYTES_PER_VOXEL = 4 + 4 + 1 + 4 * 4


def check_same_grid(image: Volume, labels: Volume, where: str) -> None:
    """Raise `InputError` unless ``labels`` lies voxel for voxel on ``image``'s grid."""
    if labels.shape != image.shape:
        raise InputError(f"{where}: label map is {labels.shape} voxels, the image {image.shape}")
    tolerance_mm = 0.01 + 1e-3 * min(image.spacing_mm)
    if not np.allclose(labels.spacing_mm, image.spacing_mm, rtol=1e-3, atol=1e-4):
        raise InputError(
            f"{where}: label map spacing {tuple(round(s, 4) for s in labels.spacing_mm)} mm "
            f"differs from the image's {tuple(round(s, 4) for s in image.spacing_mm)} mm"
        )
    if not np.allclose(labels.origin_lps, image.origin_lps, atol=tolerance_mm):
        shift = float(np.linalg.norm(np.asarray(labels.origin_lps) - image.origin_lps))
        raise InputError(f"{where}: label map origin is {shift:.2f} mm away from the image's")
    if not np.allclose(labels.direction, image.direction, atol=1e-3):
        raise InputError(f"{where}: label map orientation differs from the image's")


def label_indices(array: np.ndarray, label_values: Sequence[int], where: str) -> np.ndarray:
    """Map label values to channel indices (uint8), refusing undeclared or fractional values."""
    if array.ndim != 3:
        raise InputError(f"{where}: label map must be one grey-scale volume")
    rounded = np.rint(array)
    if not np.array_equal(rounded, array):
        raise InputError(f"{where}: label map holds non-integer values")
    present = np.unique(rounded).astype(np.int64)
    undeclared = sorted(set(present.tolist()) - {0, *label_values})
    if undeclared:
        shown = ", ".join(map(str, undeclared[:5]))
        raise InputError(f"{where}: label value(s) {shown} not declared in the labels")
    lookup = np.zeros(int(max(present.max(), *label_values)) + 1, dtype=np.uint8)
    for k, value in enumerate(label_values, start=1):
        lookup[value] = k
    return lookup[rounded.astype(np.int64)]


def read_label_map(
    case: SegmentationCase, image: Volume, limits: ReadLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """The label values of ``case``'s mask on ``image``'s grid (``image`` read from it).

    A label-map image must lie voxel for voxel on the image's grid (`check_same_grid`); a
    DICOM SEG is placed onto it and its segment numbers mapped through
    ``case.segment_values`` (segment ``n`` is value ``n`` when the case has none).

    Raises:
        InputError: the mask cannot be read, is off the image grid, or is a SEG that was not
            drawn on this image (the message says how it differs) or has frames of a segment
            it does not describe.
    """
    where = str(case.mask_path)
    if detect_kind(case.mask_path) != "dicom-seg":
        labels = read_image(case.mask_path, workers=1, limits=limits)
        check_same_grid(image, labels, where)
        return labels.array
    numbers, described = read_dicom_seg_on_image(case.mask_path, case.image_path, image)
    values = dict(case.segment_values) or {n: n for n in described}
    present = set(np.unique(numbers).tolist()) - {0}
    unmatched = sorted(present - set(values))
    if unmatched:
        raise InputError(f"{where}: frames of segment {unmatched[0]}, which it does not describe")
    lookup = np.zeros(max([*values, *present]) + 1, dtype=np.uint16)
    for number, value in values.items():
        lookup[number] = value
    return lookup[numbers]


def preprocess_pair(
    image: Volume, indices: np.ndarray, contract: PreprocessContract
) -> tuple[np.ndarray, np.ndarray]:
    """The model-ready image (float32) and label indices (uint8) on the contract's grid."""
    array = apply_contract(image, contract)
    labels = resample_to_spacing(
        indices.astype(np.float32), image.spacing_mm, contract.spacing_mm, mode="nearest"
    )
    return array, labels.astype(np.uint8)


def read_pair(
    case: SegmentationCase,
    label_values: Sequence[int],
    contract: PreprocessContract,
    memory_bytes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Read, check and preprocess one case.

    Raises:
        InputError: unreadable files, a label map off the image grid (or a DICOM SEG drawn
            on another image), undeclared label values, a colour image, or an image too large
            for ``memory_bytes`` once resampled.
    """
    max_voxels = max(1, memory_bytes // BYTES_PER_VOXEL)
    limits = ReadLimits(max_voxels=max_voxels)
    image = read_image(case.image_path, workers=1, limits=limits)
    if image.channels != 1:
        raise InputError(f"{case.image_path}: colour images cannot be segmented yet")
    resampled = math.prod(resampled_shape(image.shape, image.spacing_mm, contract.spacing_mm))
    if resampled > max_voxels:
        raise InputError(
            f"{case.image_path}: {resampled} voxels at {contract.spacing_mm} mm need "
            f"{resampled * BYTES_PER_VOXEL / 2**30:.1f} GiB, over the "
            f"{memory_bytes / 2**30:.1f} GiB allowed (--memory-gb)"
        )
    labels = read_label_map(case, image, limits)
    indices = label_indices(labels, label_values, str(case.mask_path))
    return preprocess_pair(image, indices, contract)


@dataclass(frozen=True)
class _Job:
    case: SegmentationCase
    label_values: tuple[int, ...]
    contract: PreprocessContract
    root: Path
    memory_bytes: int


def _entry_key(job: _Job) -> str:
    h = hashlib.sha256()
    for part in (
        input_digest(job.case.image_path),
        input_digest(job.case.mask_path),
        job.contract.model_dump_json(),
        repr(job.label_values),
    ):
        h.update(part.encode())
    if job.case.segment_values:  # a SEG's numbers -> values come from the other masks too
        h.update(repr(job.case.segment_values).encode())
    return h.hexdigest()[:32]


def _ensure(job: _Job) -> tuple[Path, Path, bool]:
    key = _entry_key(job)
    image_path, labels_path = job.root / f"{key}.image.npy", job.root / f"{key}.labels.npy"
    if image_path.is_file() and labels_path.is_file():
        try:
            a = np.load(image_path, mmap_mode="r", allow_pickle=False)
            b = np.load(labels_path, mmap_mode="r", allow_pickle=False)
            if a.shape == b.shape:
                return image_path, labels_path, True
        except (ValueError, OSError):
            pass  # a damaged entry is recomputed
    array, labels = read_pair(job.case, job.label_values, job.contract, job.memory_bytes)
    job.root.mkdir(parents=True, exist_ok=True)
    for path, value in ((image_path, array.astype(np.float16)), (labels_path, labels)):
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, value, allow_pickle=False)
    return image_path, labels_path, False


def cache_pairs(
    cases: list[SegmentationCase],
    label_values: Sequence[int],
    contract: PreprocessContract,
    cache_root: Path,
    memory_bytes: int,
    workers: int = 1,
    on_case: Callable[[], None] | None = None,
) -> tuple[CachedVolumes, CachedVolumes, int]:
    """Preprocess every case into the cache (reusing entries) and return them in order.

    Returns:
        Images (float16), label indices (uint8), both memory-mapped on access, and the
        number of cache hits.

    Raises:
        InputError: the first case that fails `read_pair`'s checks.
    """
    jobs = [_Job(c, tuple(label_values), contract, cache_root, memory_bytes) for c in cases]
    images: list[Path] = []
    labels: list[Path] = []
    hits = 0

    def collect(result: tuple[Path, Path, bool]) -> None:
        nonlocal hits
        images.append(result[0])
        labels.append(result[1])
        hits += result[2]
        if on_case:
            on_case()

    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=SPAWN) as pool:
            for result in pool.map(_ensure, jobs, chunksize=2):
                collect(result)
    else:
        for job in jobs:
            collect(_ensure(job))
    return CachedVolumes(images), CachedVolumes(labels), hits
