"""Read a MedMNIST archive (``.npz`` with ``{train,val,test}_{images,labels}``).

Array convention (MedMNIST's own): images are uint8, ``(N, H, W)`` for 2D grey-scale,
``(N, H, W, 3)`` for 2D colour, ``(N, D, H, W)`` for 3D; labels are integers ``(N, k)``
(``k`` = 1 for multi-class, the number of tasks for multi-label). MedMNIST images carry no
geometry.

Each array's ``.npy`` header (shape, dtype) is read and checked against `ReadLimits` and
against the bytes its zip member really holds before the array is loaded, so a lying header
cannot make numpy allocate; ``allow_pickle`` stays off (object arrays are refused).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class MedMNISTSplit:
    """The images and labels of one split."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def is_3d(self) -> bool:
        return self.images.ndim == 4 and self.images.shape[-1] != 3

    @property
    def is_colour(self) -> bool:
        return self.images.ndim == 4 and self.images.shape[-1] == 3

    def __len__(self) -> int:
        return int(self.images.shape[0])


def read_medmnist(
    path: str | Path, limits: ReadLimits = DEFAULT_LIMITS
) -> dict[str, MedMNISTSplit]:
    """Read the splits of a MedMNIST ``.npz`` archive.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` for every split the archive holds.

    Raises:
        InputError: the file is missing or not a zip of ``.npy`` arrays; an array header is
            malformed, holds objects, claims more bytes than its member holds or more than
            ``limits``; a split has images without labels (or the reverse) or their counts
            differ; image arrays are not 3D or 4D; or there is no split at all.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    limits.check_file(path.stat().st_size, where)
    headers = _array_headers(path, limits)
    splits: dict[str, MedMNISTSplit] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for split in SPLITS:
                image_key, label_key = f"{split}_images", f"{split}_labels"
                if image_key not in headers and label_key not in headers:
                    continue
                if image_key not in headers or label_key not in headers:
                    missing = label_key if image_key in headers else image_key
                    raise InputError(f"{path}: has {split} data but no {missing} array")
                images, labels = archive[image_key], archive[label_key]
                splits[split] = _validated(images, labels, split, where)
    except InputError:
        raise
    except Exception as exc:  # numpy/zipfile raise many types for broken members
        raise InputError(f"{path}: cannot read arrays ({type(exc).__name__})") from None
    if not splits:
        raise InputError(
            f"{path}: no train/val/test _images and _labels arrays; not a MedMNIST archive"
        )
    return splits


def _array_headers(path: Path, limits: ReadLimits) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in the archive, from the ``.npy`` headers alone."""
    where = str(path)
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header_bytes = member.tell()
                if dtype.hasobject:
                    raise InputError(f"{where}: array {key} holds Python objects (refused)")
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                claimed = count * dtype.itemsize
                if claimed > info.file_size - header_bytes:
                    raise InputError(
                        f"{where}: array {key} claims {claimed} bytes, its member holds "
                        f"{info.file_size - header_bytes}"
                    )
                if claimed > limits.max_decoded_bytes:
                    raise InputError(
                        f"{where}: array {key} of {claimed} bytes exceeds the limit of "
                        f"{limits.max_decoded_bytes} (ReadLimits.max_decoded_bytes)"
                    )
                headers[key] = (tuple(int(d) for d in shape), dtype)
    except InputError:
        raise
    except Exception as exc:  # zipfile/numpy raise many types for broken archives
        raise InputError(f"{path}: not a readable .npz archive ({type(exc).__name__})") from None
    return headers


def _validated(images: np.ndarray, labels: np.ndarray, split: str, where: str) -> MedMNISTSplit:
    if images.ndim not in (3, 4):
        raise InputError(f"{where}: {split}_images has shape {images.shape}, expected 3D or 4D")
    if labels.ndim == 1:
        labels = labels[:, np.newaxis]
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise InputError(
            f"{where}: {split}_labels has shape {labels.shape} for {images.shape[0]} images"
        )
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or not np.array_equal(labels, np.rint(labels)):
            raise InputError(f"{where}: {split}_labels are not integers")
        labels = labels.astype(np.int64)
    return MedMNISTSplit(images=images, labels=labels)
