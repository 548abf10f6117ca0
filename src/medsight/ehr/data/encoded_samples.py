"""`EncodedSamples`: every labelled prediction time with its past events, as flat arrays.

One record per (subject, prediction time); events are ragged, stored flat with ``offsets``
(sample ``i`` owns events ``offsets[i]:offsets[i+1]``, oldest first). Only events at or
before the sample's prediction time are ever stored here (see ``sequences.encode_samples``):
this record is the boundary that keeps the future out of every model's input.

Conventions: ``code`` is a vocabulary index (0 padding, 1 an unknown or rare code);
``value_bin`` 0 means "no numeric value"; ``value`` is the per-code standardised numeric
value (0 when none); ``raw_value`` the value in the code's unit (NaN when none);
``hours_before`` is prediction time minus event time, in hours (>= 0; static rows: 0);
``delta_hours`` the time since the previous event of the same sample (0 for the first);
``sex`` 0 unknown, 1 female, 2 male; ``label`` 1 event, 0 no event, -1 unknown (prediction).

Saved as one ``.npz`` (``np.load(allow_pickle=False)``: no pickle of anything), or as a
folder of ``.npy`` files opened memory-mapped (`assemble_folder`, `open_folder`), so a large
cohort's samples stay on disk and only the batches being trained on are read.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from medsight.errors import InputError

SEX_CODES = {"unknown": 0, "F": 1, "M": 2}


@dataclass
class EncodedSamples:
    """Samples (per prediction time) and their past events (flat, see module docstring)."""

    subject_id: np.ndarray  # (n,) int64
    prediction_time: np.ndarray  # (n,) datetime64[us]
    label: np.ndarray  # (n,) int8
    split: np.ndarray  # (n,) str: train / tuning / held_out
    sex: np.ndarray  # (n,) int8
    age_years: np.ndarray  # (n,) float32, NaN when no birth date
    offsets: np.ndarray  # (n + 1,) int64
    code: np.ndarray  # (E,) int32
    value_bin: np.ndarray  # (E,) int16
    value: np.ndarray  # (E,) float32
    raw_value: np.ndarray  # (E,) float32
    hours_before: np.ndarray  # (E,) float32
    delta_hours: np.ndarray  # (E,) float32

    def __len__(self) -> int:
        return int(self.subject_id.shape[0])

    def lengths(self) -> np.ndarray:
        """Events per sample, shape (n,)."""
        return np.diff(self.offsets)

    def events(self, i: int) -> slice:
        """The flat-array slice of sample ``i``'s events."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def subset(self, indices: np.ndarray) -> EncodedSamples:
        """The samples at ``indices`` (in that order), with their events."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        take = (
            np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
            if len(indices)
            else np.zeros(0, np.int64)
        ).astype(np.int64)
        per_sample = {
            f.name: getattr(self, f.name)[indices] for f in fields(self) if f.name in _SAMPLE
        }
        per_event = {f.name: getattr(self, f.name)[take] for f in fields(self) if f.name in _EVENT}
        return EncodedSamples(offsets=offsets, **per_sample, **per_event)

    def save(self, path: Path) -> Path:
        """Write every array to one ``.npz`` (uncompressed: it is a cache)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        arrays["split"] = arrays["split"].astype("U8")
        arrays["prediction_time"] = (
            arrays["prediction_time"].astype("datetime64[us]").astype(np.int64)
        )
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def concatenate(cls, pieces: Sequence[EncodedSamples]) -> EncodedSamples:
        """The samples of every piece, in order (in memory)."""
        if not pieces:
            return cls.empty()
        arrays: dict[str, np.ndarray] = {}
        for f in fields(cls):
            if f.name == "offsets":
                continue
            arrays[f.name] = np.concatenate([getattr(p, f.name) for p in pieces])
        lengths = np.concatenate([p.lengths() for p in pieces])
        arrays["offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(**arrays)

    @classmethod
    def empty(cls) -> EncodedSamples:
        """No samples."""
        return cls(
            subject_id=np.zeros(0, np.int64),
            prediction_time=np.zeros(0, "datetime64[us]"),
            label=np.zeros(0, np.int8),
            split=np.zeros(0, "U8"),
            sex=np.zeros(0, np.int8),
            age_years=np.zeros(0, np.float32),
            offsets=np.zeros(1, np.int64),
            code=np.zeros(0, np.int32),
            value_bin=np.zeros(0, np.int16),
            value=np.zeros(0, np.float32),
            raw_value=np.zeros(0, np.float32),
            hours_before=np.zeros(0, np.float32),
            delta_hours=np.zeros(0, np.float32),
        )

    @classmethod
    def assemble_folder(cls, pieces: Sequence[Path], folder: Path) -> EncodedSamples:
        """Concatenate `save`d pieces into ``folder`` (one ``.npy`` per field), one piece in
        memory at a time, and open the result memory-mapped (`open_folder`).

        The folder appears only when whole (written beside it, then renamed).
        """
        sizes = []
        for path in pieces:
            with np.load(path, allow_pickle=False) as data:
                sizes.append((len(data["subject_id"]), len(data["code"])))
        n = sum(s for s, _ in sizes)
        e = sum(k for _, k in sizes)
        template = cls.empty()
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        outputs = {}
        for f in fields(cls):
            dtype = _disk_dtype(getattr(template, f.name))
            shape = (n + 1,) if f.name == "offsets" else (n if f.name in _SAMPLE else e,)
            outputs[f.name] = np.lib.format.open_memmap(
                partial / f"{f.name}.npy", mode="w+", dtype=dtype, shape=shape
            )
        outputs["offsets"][0] = 0
        at_sample, at_event = 0, 0
        for path in pieces:
            piece = cls.load(path)
            k, m = len(piece), int(piece.offsets[-1])
            for f in fields(cls):
                array = getattr(piece, f.name)
                if f.name == "offsets":
                    outputs["offsets"][at_sample + 1 : at_sample + k + 1] = array[1:] + at_event
                elif f.name in _SAMPLE:
                    outputs[f.name][at_sample : at_sample + k] = _to_disk(array)
                else:
                    outputs[f.name][at_event : at_event + m] = array
            at_sample, at_event = at_sample + k, at_event + m
        for array in outputs.values():
            array.flush()
        del outputs
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)
        return cls.open_folder(folder)

    @classmethod
    def open_folder(cls, folder: Path) -> EncodedSamples:
        """Open a folder written by `assemble_folder`, memory-mapped (read-only).

        Raises:
            InputError: a field's file is missing or unreadable.
        """
        arrays = {}
        try:
            for f in fields(cls):
                arrays[f.name] = np.load(folder / f"{f.name}.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder}: not an encoded-samples folder ({exc})") from None
        arrays["prediction_time"] = arrays["prediction_time"].view("datetime64[us]")
        return cls(**arrays)

    @classmethod
    def load(cls, path: Path) -> EncodedSamples:
        """Read a file written by `save`.

        Raises:
            InputError: the file is missing or not an encoded-samples file.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {f.name: data[f.name] for f in fields(cls)}
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not an encoded-samples file ({exc})") from None
        arrays["prediction_time"] = arrays["prediction_time"].astype("datetime64[us]")
        return cls(**arrays)


_SAMPLE = {"subject_id", "prediction_time", "label", "split", "sex", "age_years"}
_EVENT = {"code", "value_bin", "value", "raw_value", "hours_before", "delta_hours"}


def _disk_dtype(array: np.ndarray) -> np.dtype:
    if np.issubdtype(array.dtype, np.datetime64):
        return np.dtype(np.int64)
    return array.dtype


def _to_disk(array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[us]").astype(np.int64)
    return array
