"""Everything a segmentation run needs before training starts, checked up front.

Reads the dataset (manifest or Decathlon/nnU-Net folder), splits by patient (or takes the
manifest's ``split`` column), reads or makes the plan from the train+val cases, and fills
the cache with checked image/label pairs. Every problem a user can fix (label map off the
image grid, undeclared label values, masks empty in every training case, a structure no
training case holds, an image too large for the memory allowed) is an `InputError` raised
here, before a single epoch runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case
from medsight.imaging.data.patient_split import SPLITS, patient_split, write_splits
from medsight.imaging.data.segmentation_cache import cache_pairs
from medsight.imaging.data.segmentation_manifest import SegmentationCase, read_segmentation_source
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.preprocess.plan import Plan, make_segment_plan, read_plan, write_plan


def default_memory_bytes() -> int:
    """Half of the memory available now (the rest is for the OS page cache and training)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


@dataclass
class SegmentationData:
    """A segmentation dataset ready to train on."""

    cases: list[SegmentationCase]
    label_names: list[str]
    label_values: list[int]
    splits: dict[str, str]
    plan: Plan
    images: CachedVolumes
    labels: CachedVolumes
    cache_hits: int

    @property
    def class_names(self) -> list[str]:
        """Output channels: background, then the structures in label-value order."""
        return ["background", *self.label_names]

    def indices(self, split: str) -> np.ndarray:
        """Row indices of the cases in ``split``."""
        return np.array([i for i, c in enumerate(self.cases) if self.splits[c.case_id] == split])


def as_cases(cases: list[SegmentationCase]) -> list[Case]:
    """The cases as `Case` records (for the patient split and the fingerprint)."""
    return [
        Case(c.case_id, c.patient_id, "segmentation", c.image_path, split=c.split) for c in cases
    ]


def _splits(cases: list[SegmentationCase], seed: int, source: Path) -> dict[str, str]:
    given = [c.split for c in cases]
    if all(given):
        return {c.case_id: c.split for c in cases}
    if any(given):
        raise InputError(f"{source}: the split column is filled for some rows only")
    return patient_split(as_cases(cases), seed)


def _check_structures(data: SegmentationData, source: Path) -> None:
    train = data.indices("train")
    present = np.zeros(len(data.class_names), dtype=bool)
    for i in train:
        counts = np.bincount(np.asarray(data.labels[int(i)]).ravel(), minlength=len(present))
        present |= counts[: len(present)] > 0
    if not present[1:].any():
        raise InputError(f"{source}: every training mask is empty (nothing to learn)")
    missing = [n for n, p in zip(data.label_names, present[1:], strict=True) if not p]
    if missing:
        raise InputError(
            f"{source}: structure(s) {', '.join(map(repr, missing))} appear in no training mask"
        )


def prepare_segmentation_data(
    data: Path,
    run_dir: Path,
    seed: int,
    labels: dict[str, int] | None = None,
    replan: bool = False,
    memory_bytes: int | None = None,
    on_stage: Callable[[str, int], Callable[[], None]] | None = None,
) -> SegmentationData:
    """Read, split, plan and cache ``data`` for a segmentation run in ``run_dir``.

    Args:
        data: a manifest CSV, a folder holding ``labels.csv``, or a Decathlon/nnU-Net folder.
        run_dir: the run folder (``splits.csv``, ``plan.json``, ``cache/`` go there).
        seed: seed of the split and of the fingerprint sample.
        labels: label names and values overriding the dataset's declaration.
        replan: make a new plan even if ``run_dir/plan.json`` exists.
        memory_bytes: memory one case may take (default: half of what is available).
        on_stage: progress hook: called with (stage name, total) and returns a per-item tick.

    Raises:
        InputError: see the module docstring.
    """
    source = read_segmentation_source(data, labels)
    cases = source.cases
    splits = _splits(cases, seed, source.source)
    for split in SPLITS:
        if not any(splits[c.case_id] == split for c in cases):
            raise InputError(f"{data}: the {split} split is empty (too few patients?)")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_splits(run_dir / "splits.csv", as_cases(cases), splits)
    plan_path = run_dir / "plan.json"
    if plan_path.is_file() and not replan:
        plan = read_plan(plan_path)
        if plan.task != "segment":
            raise InputError(f"{plan_path}: a {plan.task} plan; rerun with --replan")
    else:
        development = [c for c in as_cases(cases) if splits[c.case_id] != "test"]
        tick = on_stage("fingerprinting", min(40, len(development))) if on_stage else None
        plan = make_segment_plan(fingerprint_cases(development, 40, seed, on_case=tick))
        write_plan(plan_path, plan)
    tick = on_stage("reading + preprocessing", len(cases)) if on_stage else None
    values = list(source.labels.values())
    images, label_maps, hits = cache_pairs(
        cases,
        values,
        plan.preprocess,
        run_dir / "cache",
        memory_bytes or default_memory_bytes(),
        workers=2,
        on_case=tick,
    )
    prepared = SegmentationData(
        cases, list(source.labels), values, splits, plan, images, label_maps, hits
    )
    _check_structures(prepared, source.source)
    return prepared
