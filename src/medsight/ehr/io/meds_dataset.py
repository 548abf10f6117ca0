"""MEDS datasets on disk: the one streaming writer every importer uses, and the reader.

A MEDS dataset (Medical Event Data Standard, schemas from the ``meds`` package) is a folder::

    data/{split}/{shard}.parquet      rows subject_id, time, code, numeric_value, text_value
    metadata/dataset.json             dataset and ETL names and versions
    metadata/codes.parquet            every code in data/, with description, parent codes,
                                      and medsight's extras: unit, count
    metadata/subject_splits.parquet   subject_id, split (train / tuning / held_out)

Rows of one subject live in one shard, sorted by time with static rows (null time: birth,
sex) first. Times are naive microsecond timestamps (MEDS has no time zone; importers convert
zoned times to UTC first).

Why a hand-written writer: the MEDS ecosystem's ETL tools (MEDS-Transforms) are Hydra
pipelines over polars that need the whole source staged; here each importer streams rows in
chunks and the writer spills them by subject bucket, so memory is bounded by one chunk plus
one bucket, not by the cohort. The folder appears only when it is whole (write beside it,
then rename): an import that fails leaves no half-written MEDS folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import meds
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medsight.ehr.io.units import UnitCounter, canonical_units, normalise_units, warn_dropped
from medsight.errors import InputError

#: the MEDS event schema: subject_id int64, time timestamp[us], code string,
#: numeric_value float32, text_value large_string
EVENT_SCHEMA: pa.Schema = meds.DataSchema.schema()
#: the MEDS label schema (medsight writes subject_id, prediction_time, boolean_value)
LABEL_SCHEMA: pa.Schema = meds.LabelSchema.schema()
SPLITS = (meds.train_split, meds.tuning_split, meds.held_out_split)
BIRTH = meds.birth_code
DEATH = meds.death_code
#: codes without a vocabulary prefix that MEDS itself defines
MEDS_CODE_PREFIX = "MEDS_"
#: rows held in memory before they are spilled to the bucket files
SPILL_ROWS = 400_000
#: rows per written shard that the default bucket count aims at
ROWS_PER_SHARD = 1_000_000
#: bytes of a typical source row (CSV or NDJSON) and gzip's typical ratio on such text
BYTES_PER_SOURCE_ROW = 60
GZIP_RATIO = 6
#: the optional column of `MedsWriter.add` giving each value's unit (not written to data/)
UNIT_COLUMN = "unit"


def has_vocabulary(code: str) -> bool:
    """True for ``VOCAB//value`` codes and MEDS's own ``MEDS_*`` codes."""
    if code.startswith(MEDS_CODE_PREFIX):
        return True
    vocab, sep, value = code.partition("//")
    return bool(sep and vocab and value)


def split_of(subject_id: int, seed: int = 0, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """The default split of a subject: a keyed hash, stable whatever order subjects arrive in.

    ``fractions`` are train's and tuning's shares; held_out gets the rest.
    """
    digest = hashlib.blake2b(f"{seed}:{subject_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < fractions[0]:
        return meds.train_split
    if u < fractions[0] + fractions[1]:
        return meds.tuning_split
    return meds.held_out_split


def events_table(columns: Mapping[str, Any]) -> pa.Table:
    """A MEDS event table from column arrays (text_value optional), cast to the MEDS schema."""
    n = len(columns["subject_id"])
    arrays = {}
    for field in EVENT_SCHEMA:
        values = columns.get(field.name)
        if values is None:
            arrays[field.name] = pa.nulls(n, field.type)
        elif isinstance(values, pa.Array | pa.ChunkedArray):
            arrays[field.name] = values.cast(field.type)
        else:
            arrays[field.name] = pa.array(values, type=field.type)
    return pa.table(arrays, schema=EVENT_SCHEMA)


@dataclass
class _CodeInfo:
    count: int = 0
    description: str | None = None
    unit: str | None = None
    parents: tuple[str, ...] = ()


class MedsWriter:
    """Stream events into a new MEDS folder that replaces ``out`` only when it is complete.

    Use as a context manager; rows go in with `add` (any order, any chunk size). On a clean
    exit the buckets are sorted and written as shards; on an exception nothing is left.

    Args:
        out: the MEDS folder to create (replaced if it exists, once the new one is whole).
        dataset_name: ``dataset.json``'s name (e.g. the source kind).
        source: what to name in error messages (the input file or folder).
        created_at: ``dataset.json``'s ``created_at`` (fixed by the synthetic generator so that
            the same seed writes the same bytes; default: now).
        buckets: shards per split; every subject's rows land in one bucket. Default: sized
            from the source's bytes (`buckets_for_source`), about `ROWS_PER_SHARD` rows each,
            so that every later stage (labels, plan, encoding), which holds one shard at a
            time, stays bounded however large the cohort.
        splits: subject_id -> split for subjects whose split is given (the rest: `split_of`).
        seed: the key of the default split hash.
    """

    def __init__(
        self,
        out: Path,
        *,
        dataset_name: str,
        source: str = "",
        created_at: str | None = None,
        buckets: int | None = None,
        splits: Mapping[int, str] | None = None,
        seed: int = 0,
    ) -> None:
        self.out = Path(out)
        self.dataset_name = dataset_name
        self.source = source or str(out)
        self.created_at = created_at
        if buckets is None:
            buckets = buckets_for_source(Path(source)) if source else 1
        self.buckets = max(1, int(buckets))
        self.seed = seed
        self._splits: dict[int, str] = dict(splits or {})
        for split in self._splits.values():
            if split not in SPLITS:
                raise InputError(
                    f"{self.source}: split {split!r} is not one of {', '.join(SPLITS)}"
                )
        self._codes: dict[str, _CodeInfo] = {}
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._spills = 0
        self._tmp: Path | None = None
        self._units = UnitCounter()
        self.rows = 0
        #: rows dropped because their unit does not convert to their code's unit, per code
        self.dropped_units: Counter[str] = Counter()

    # -- writing ---------------------------------------------------------------------------
    def __enter__(self) -> MedsWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.out.parent))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)

    def describe_code(
        self,
        code: str,
        description: str | None = None,
        unit: str | None = None,
        parent_codes: Iterable[str] = (),
    ) -> None:
        """Record a code's description, unit and parents for ``metadata/codes.parquet``."""
        info = self._codes.setdefault(code, _CodeInfo())
        info.description = description or info.description
        info.unit = unit or info.unit
        info.parents = tuple(parent_codes) or info.parents

    def set_split(self, subject_id: int, split: str) -> None:
        """Put a subject in a split (train, tuning, held_out)."""
        if split not in SPLITS:
            raise InputError(f"{self.source}: split {split!r} is not one of {', '.join(SPLITS)}")
        self._splits[int(subject_id)] = split

    def add(self, table: pa.Table | Mapping[str, Any]) -> None:
        """Add events (a table or column arrays with the MEDS column names).

        An optional ``unit`` column gives each numeric value's unit: a code whose rows carry
        several units is normalised to its most frequent one (see `units`), and the code's
        unit goes to ``codes.parquet``.

        Raises:
            InputError: a code without a vocabulary (``VOCAB//value``), or a NaN/inf value.
        """
        if isinstance(table, pa.Table):
            table = {name: table.column(name) for name in table.column_names}
        unit = table.get(UNIT_COLUMN)
        table = events_table(table)
        if table.num_rows == 0:
            return
        self._check(table)
        if unit is None:
            units = pa.nulls(table.num_rows, pa.string())
        else:
            if not isinstance(unit, pa.Array | pa.ChunkedArray):
                unit = pa.array(unit, pa.string())
            units = canonical_units(unit)
            self._units.add(
                table.column("code").combine_chunks(),
                units,
                table.column("numeric_value").combine_chunks(),
            )
        table = table.append_column(UNIT_COLUMN, units)
        codes = table.column("code").value_counts()
        for item in codes.to_pylist():
            self._codes.setdefault(item["values"], _CodeInfo()).count += item["counts"]
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= SPILL_ROWS:
            self._spill()

    def _check(self, table: pa.Table) -> None:
        if table.column("subject_id").null_count or table.column("code").null_count:
            raise InputError(f"{self.source}: a row has no subject_id or no code")
        unique = pc.unique(table.column("code")).to_pylist()
        bad = [c for c in unique if c not in self._codes and not has_vocabulary(c)]
        if bad:
            raise InputError(
                f"{self.source}: code {bad[0]!r} has no vocabulary (expected VOCAB//value, "
                "e.g. LOINC//4548-4)"
            )
        column = table.column("numeric_value")
        values = column.to_numpy(zero_copy_only=False)  # nulls read as NaN
        null = column.is_null().to_numpy(zero_copy_only=False)
        if not (np.isfinite(values) | null).all():
            raise InputError(f"{self.source}: numeric_value is NaN or infinite in a row")

    def _bucket_of(self, subject_ids: pa.ChunkedArray) -> np.ndarray:
        ids = subject_ids.to_numpy().astype(np.uint64)
        mixed = (ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
        return (mixed % np.uint64(self.buckets)).astype(np.int64)

    def _spill(self) -> None:
        if not self._pending:
            return
        assert self._tmp is not None
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        bucket = self._bucket_of(table.column("subject_id"))
        for b in range(self.buckets):
            part = table.filter(pa.array(bucket == b))
            if part.num_rows:
                folder = self._tmp / "spill" / str(b)
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, folder / f"{self._spills:06d}.parquet")
        self._spills += 1

    def _finish(self) -> None:
        assert self._tmp is not None
        self._spill()
        if self.rows == 0:
            raise InputError(f"{self.source}: no events to write")
        tmp = self._tmp
        mixed = self._units.mixed()
        for code, unit in self._units.targets().items():
            self._codes.setdefault(code, _CodeInfo()).unit = unit
        subjects_per_split: dict[str, list[int]] = {s: [] for s in SPLITS}
        for b in range(self.buckets):
            folder = tmp / "spill" / str(b)
            if not folder.exists():
                continue
            table = pq.read_table(sorted(folder.glob("*.parquet")))
            table, dropped = normalise_units(
                table, mixed, UNIT_COLUMN, {c: i.description for c, i in self._codes.items()}
            )
            self._forget(dropped)
            table = table.drop_columns([UNIT_COLUMN])
            table = table.take(
                pc.sort_indices(
                    table,
                    sort_keys=[
                        (name, "ascending", "at_start")
                        for name in ("subject_id", "time", "code", "numeric_value", "text_value")
                    ],
                )
            )
            self._check_births(table)
            subjects = pc.unique(table.column("subject_id")).to_numpy()
            split = np.array([self._split(int(s)) for s in subjects])
            for name in SPLITS:
                chosen = subjects[split == name]
                if not len(chosen):
                    continue
                subjects_per_split[name].extend(int(s) for s in chosen)
                part = table.filter(pc.is_in(table.column("subject_id"), pa.array(chosen)))
                (tmp / "data" / name).mkdir(parents=True, exist_ok=True)
                pq.write_table(part, tmp / "data" / name / f"{b}.parquet")
            shutil.rmtree(folder)
        warn_dropped(self.source, self.dropped_units)
        if self.rows == 0:
            raise InputError(f"{self.source}: no events left after unit normalisation")
        self._write_metadata(tmp, subjects_per_split)
        shutil.rmtree(tmp / "spill", ignore_errors=True)
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(tmp, self.out)

    def _forget(self, dropped: pa.Table) -> None:
        if not dropped.num_rows:
            return
        for item in dropped.column("code").value_counts().to_pylist():
            code, n = item["values"], item["counts"]
            self.dropped_units[code] += n
            self._codes[code].count -= n
            if self._codes[code].count <= 0:
                del self._codes[code]
        self.rows -= dropped.num_rows

    def _split(self, subject_id: int) -> str:
        return self._splits.get(subject_id) or split_of(subject_id, self.seed)

    def _check_births(self, table: pa.Table) -> None:
        births = table.filter(pc.equal(table.column("code"), BIRTH))
        if births.num_rows < 2:
            return
        counts = births.group_by("subject_id").aggregate([("time", "count_distinct")])
        if pc.max(counts.column("time_count_distinct")).as_py() > 1:
            raise InputError(f"{self.source}: a subject has two different {BIRTH} times")

    def _write_metadata(self, tmp: Path, subjects: dict[str, list[int]]) -> None:
        (tmp / "metadata").mkdir(parents=True, exist_ok=True)
        from medsight import __version__

        dataset = {
            "dataset_name": self.dataset_name,
            "dataset_version": "1",
            "etl_name": "medsight",
            "etl_version": __version__,
            "meds_version": meds.__version__,
            "created_at": self.created_at or _now_iso(),
        }
        (tmp / meds.dataset_metadata_filepath).write_text(json.dumps(dataset, indent=2) + "\n")
        codes = sorted(self._codes)
        table = pa.table(
            {
                "code": pa.array(codes, pa.string()),
                "description": pa.array([self._codes[c].description for c in codes], pa.string()),
                "parent_codes": pa.array(
                    [list(self._codes[c].parents) or None for c in codes], pa.list_(pa.string())
                ),
                "unit": pa.array([self._codes[c].unit for c in codes], pa.string()),
                "count": pa.array([self._codes[c].count for c in codes], pa.int64()),
            }
        )
        pq.write_table(table, tmp / meds.code_metadata_filepath)
        ids = [(s, name) for name in SPLITS for s in sorted(subjects[name])]
        splits = pa.table(
            {
                "subject_id": pa.array([s for s, _ in ids], pa.int64()),
                "split": pa.array([n for _, n in ids], pa.string()),
            }
        )
        pq.write_table(splits, tmp / meds.subject_splits_filepath)


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat()


# -- reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MedsDataset:
    """An opened MEDS folder (see `open_meds`)."""

    root: Path

    def shard_paths(self, split: str | None = None) -> list[Path]:
        """Event shards, sorted (of one split's folder when given)."""
        base = self.root / meds.data_subdirectory
        pattern = f"{split}/**/*.parquet" if split else "**/*.parquet"
        return sorted(base.glob(pattern))

    def metadata(self) -> dict[str, Any]:
        """``metadata/dataset.json`` (empty when absent)."""
        path = self.root / meds.dataset_metadata_filepath
        return json.loads(path.read_text()) if path.exists() else {}

    def codes(self) -> pa.Table:
        """``metadata/codes.parquet`` (an empty table when absent)."""
        path = self.root / meds.code_metadata_filepath
        if not path.exists():
            return meds.CodeMetadataSchema.schema().empty_table()
        return pq.read_table(path)

    def splits(self) -> dict[int, str]:
        """subject_id -> split, from ``metadata/subject_splits.parquet`` (empty when absent)."""
        path = self.root / meds.subject_splits_filepath
        if not path.exists():
            return {}
        table = pq.read_table(path)
        return dict(
            zip(
                table.column("subject_id").to_pylist(),
                table.column("split").to_pylist(),
                strict=True,
            )
        )

    def read_shard(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        """One shard, validated against the MEDS event schema.

        Raises:
            InputError: the shard is unreadable or does not follow the MEDS schema.
        """
        try:
            table = pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable parquet shard ({exc})") from None
        if columns is None:
            try:
                table = meds.DataSchema.align(table)
            except Exception as exc:  # the meds package raises several types
                raise InputError(f"{path}: does not follow the MEDS event schema ({exc})") from None
        return table


def open_meds(root: Path) -> MedsDataset:
    """Open a MEDS folder.

    Raises:
        InputError: ``root`` is not a folder with ``data/*.parquet`` shards (says which command
            makes one).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such MEDS folder (make one with `medsight ehr import`)")
    dataset = MedsDataset(root)
    if not dataset.shard_paths():
        raise InputError(
            f"{root}: not a MEDS dataset (no {meds.data_subdirectory}/**/*.parquet); "
            "make one with `medsight ehr import SOURCE -o DATA --from KIND`"
        )
    return dataset


def validate_meds(root: Path) -> dict[str, int]:
    """Check every shard and the metadata against the MEDS schemas, one shard at a time.

    Returns:
        ``{"subjects": ..., "events": ..., "codes": ...}``.

    Raises:
        InputError: a shard or metadata file breaks the schema, a subject appears in two
            shards, or a shard's rows are not sorted by subject and time.
    """
    dataset = open_meds(root)
    seen: set[int] = set()
    events = 0
    codes: set[str] = set()
    for path in dataset.shard_paths():
        table = dataset.read_shard(path)
        subjects = pc.unique(table.column("subject_id")).to_pylist()
        if seen.intersection(subjects):
            raise InputError(f"{path}: a subject's rows are split over several shards")
        seen.update(subjects)
        events += table.num_rows
        codes.update(pc.unique(table.column("code")).to_pylist())
    try:
        meds.CodeMetadataSchema.align(dataset.codes())
    except Exception as exc:
        raise InputError(f"{root}: metadata/codes.parquet breaks the MEDS schema ({exc})") from None
    missing = codes - set(dataset.codes().column("code").to_pylist())
    if missing:
        raise InputError(f"{root}: metadata/codes.parquet lacks {len(missing)} codes used in data/")
    splits = dataset.splits()
    unknown = {s for s in splits.values() if s not in SPLITS}
    if unknown:
        raise InputError(f"{root}: unknown split names {sorted(unknown)}")
    return {"subjects": len(seen), "events": events, "codes": len(codes)}


def shards_needed(rows: int, rows_per_shard: int | None = None) -> int:
    """How many buckets keep each shard near ``rows_per_shard`` rows (`ROWS_PER_SHARD`)."""
    return max(1, math.ceil(rows / (rows_per_shard or ROWS_PER_SHARD)))


def buckets_for_source(source: Path) -> int:
    """Buckets for an import from ``source`` (a file or folder), from its size on disk.

    A source row takes roughly `BYTES_PER_SOURCE_ROW` bytes as CSV/NDJSON, and gzip shrinks
    such text about `GZIP_RATIO` times; the estimate only has to be right within a factor
    of two or so (a shard of 0.5-2 M rows is fine).
    """
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = [p for p in source.rglob("*") if p.is_file()]
    else:
        return 1
    rows = 0.0
    for path in files:
        size = path.stat().st_size
        rows += size * (GZIP_RATIO if path.suffix == ".gz" else 1) / BYTES_PER_SOURCE_ROW
    return shards_needed(int(rows))
