"""Everything a classification run needs before training starts, checked up front.

Reads the manifest, fixes the class order, splits by patient (or takes the manifest's
``split`` column), reads or makes the plan (from train+val cases only, so nothing about the
test split leaks into preprocessing), and fills the cache. Every problem a user can fix is
an `InputError` raised here, before a single epoch runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.data.dataset_fingerprint import fingerprint_cases
from medsight.imaging.data.manifest import Case, read_manifest
from medsight.imaging.data.patient_split import SPLITS, patient_split, write_splits
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.data.volume_loading import load_cases
from medsight.imaging.preprocess.fingerprint import DatasetFingerprint
from medsight.imaging.preprocess.plan import (
    CANONICAL_ORIENTATION,
    Plan,
    make_classify_plan,
    read_plan,
    write_plan,
)


@dataclass
class ClassificationData:
    """A dataset ready to train on."""

    cases: list[Case]
    class_names: list[str]
    labels: np.ndarray
    splits: dict[str, str]
    plan: Plan
    volumes: CachedVolumes
    cache_hits: int

    def indices(self, split: str) -> np.ndarray:
        """Row indices of the cases in ``split`` (integers even when none: an evaluation-only
        manifest has no train split, and an empty float array cannot index)."""
        rows = [i for i, c in enumerate(self.cases) if self.splits[c.case_id] == split]
        return np.array(rows, dtype=np.int64)


def _class_names(cases: list[Case], classes: list[str] | None, source: Path) -> list[str]:
    present = sorted({c.label for c in cases})
    if classes is None:
        if len(present) < 2:
            raise InputError(
                f"{source}: only one label ({present[0]!r}); need at least two classes"
            )
        return present
    unknown = [label for label in present if label not in classes]
    if unknown:
        raise InputError(
            f"{source}: label(s) {', '.join(map(repr, unknown))} not in the classes {classes}"
        )
    empty = [name for name in classes if name not in present]
    if empty:
        raise InputError(f"{source}: class(es) {', '.join(map(repr, empty))} have no cases")
    return list(classes)


def _splits(cases: list[Case], seed: int, source: Path) -> dict[str, str]:
    given = [c.split for c in cases]
    if all(given):
        bad = sorted({s for s in given if s not in SPLITS})
        if bad:
            raise InputError(f"{source}: unknown split value(s) {bad}; use train, val, test")
        return {c.case_id: c.split for c in cases}
    if any(given):
        raise InputError(f"{source}: the split column is filled for some rows only")
    return patient_split(cases, seed)


def prepare_classification_data(
    data: Path,
    run_dir: Path,
    seed: int,
    classes: list[str] | None = None,
    replan: bool = False,
    on_stage: Callable[[str, int], Callable[[], None]] | None = None,
    choose_plan: Callable[[DatasetFingerprint, dict[str, int]], Plan] | None = None,
) -> ClassificationData:
    """Read, split, plan and cache ``data`` for a classification run in ``run_dir``.

    Args:
        data: a manifest CSV or a folder holding ``labels.csv``.
        run_dir: the run folder (``splits.csv``, ``plan.json``, ``cache/`` go there).
        seed: seed of the split and of the fingerprint sample.
        classes: class names in output order (default: the sorted labels).
        replan: make a new plan even if ``run_dir/plan.json`` exists.
        on_stage: progress hook: called with (stage name, total) and returns a per-item tick.
        choose_plan: makes the plan from the fingerprint and the cases per split, instead
            of `make_classify_plan` (`medsight demo` fits it to its time budget).

    Raises:
        InputError: unreadable manifest, unknown labels, a class without cases, too few
            patients, an invalid plan, or an unreadable image.
    """
    cases = read_manifest(data)
    names = _class_names(cases, classes, data)
    splits = _splits(cases, seed, data)
    for split in SPLITS:
        if not any(splits[c.case_id] == split for c in cases):
            raise InputError(f"{data}: the {split} split is empty (too few patients?)")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_splits(run_dir / "splits.csv", cases, splits)
    plan_path = run_dir / "plan.json"
    if plan_path.is_file() and not replan:
        plan = read_plan(plan_path)
    else:
        development = [c for c in cases if splits[c.case_id] != "test"]
        tick = on_stage("fingerprinting", min(40, len(development))) if on_stage else None
        fingerprint = fingerprint_cases(
            development, 40, seed, on_case=tick, orientation=CANONICAL_ORIENTATION
        )
        if choose_plan is None:
            plan = make_classify_plan(fingerprint)
        else:
            counts = {split: sum(splits[c.case_id] == split for c in cases) for split in SPLITS}
            plan = choose_plan(fingerprint, counts)
        write_plan(plan_path, plan)
    tick = on_stage("reading + preprocessing", len(cases)) if on_stage else None
    volumes, hits = load_cases(cases, plan.preprocess, run_dir / "cache", workers=2, on_case=tick)
    labels = np.array([names.index(c.label) for c in cases])
    return ClassificationData(cases, names, labels, splits, plan, volumes, hits)
