"""A risk run's data: the MEDS dataset, its labels, the plan and the encoded samples (cached).

``RUN/plan.json`` is made from the train split on the first run and reused afterwards (a
person may edit it) unless ``--replan``. The encoded samples are cached in
``RUN/cache/encoded-<key>/`` (memory-mapped arrays), keyed by a fingerprint of the data's
shards and metadata, the labels and the plan: a rerun on the same inputs skips encoding, any
change re-encodes.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.data.plan import PLAN_FILE, EhrPlan, make_ehr_plan, read_ehr_plan, write_ehr_plan
from medsight.ehr.data.sequences import encode_samples
from medsight.ehr.io.meds_dataset import MedsDataset, open_meds
from medsight.ehr.labels.label_file import read_labels
from medsight.ehr.labels.templates import label_definition
from medsight.errors import InputError

CACHE_DIR = "cache"


@dataclass(frozen=True)
class RiskData:
    """Everything a risk run trains from."""

    data: Path
    labels_path: Path
    dataset: MedsDataset
    labels: pa.Table
    plan: EhrPlan
    samples: EncodedSamples
    cache_hit: bool

    def indices(self, split: str, labelled: bool = True) -> np.ndarray:
        """Sample indices of ``split`` (only samples with a known label by default)."""
        chosen = np.asarray(self.samples.split) == split
        if labelled:
            chosen &= np.asarray(self.samples.label) >= 0
        return np.flatnonzero(chosen)

    def label_definition(self) -> str:
        """What the labels mean (the task's sentence when `medsight ehr label` wrote them)
        and how many there are, for the model card and the report."""
        n = len(self.samples)
        positives = int((np.asarray(self.samples.label) == 1).sum())
        subjects = len(np.unique(np.asarray(self.samples.subject_id)))
        meaning = label_definition(self.labels_path) or f"user labels from {self.labels_path.name}"
        return (
            f"{meaning} ({n} prediction times of {subjects} subjects, "
            f"{positives} with the event, {positives / max(n, 1):.1%})"
        )


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def data_key(dataset: MedsDataset, labels_path: Path, plan: EhrPlan) -> str:
    """A fingerprint of what the encoded samples depend on (data, labels, plan)."""
    digest = hashlib.sha256()
    for path in dataset.shard_paths():
        stat = path.stat()
        digest.update(
            f"{path.relative_to(dataset.root)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        )
    splits = dataset.root / "metadata" / "subject_splits.parquet"
    if splits.is_file():
        _hash_file(digest, splits)
    _hash_file(digest, labels_path)
    digest.update(plan.model_dump_json().encode())
    return digest.hexdigest()[:16]


def run_plan(
    dataset: MedsDataset, labels: pa.Table | None, run_dir: Path, replan: bool, memory_gb: float
) -> EhrPlan:
    """``RUN/plan.json`` if there is one (and not ``replan``), else a new plan saved there."""
    path = run_dir / PLAN_FILE
    if path.is_file() and not replan:
        return read_ehr_plan(path)
    plan = make_ehr_plan(dataset, labels, memory_gb=memory_gb)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_ehr_plan(path, plan)
    return plan


def prepare_risk_data(
    data: Path, labels_path: Path, run_dir: Path, replan: bool = False, memory_gb: float = 0.0
) -> RiskData:
    """Open, plan and encode (or reuse the cache) for a risk run in ``run_dir``.

    Raises:
        InputError: unreadable data or labels, labels that do not fit the data, or splits
            without labelled samples to train and tune on.
    """
    dataset = open_meds(data)
    labels = read_labels(labels_path, dataset)
    plan = run_plan(dataset, labels, run_dir, replan, memory_gb)
    key = data_key(dataset, labels_path, plan)
    folder = run_dir / CACHE_DIR / f"encoded-{key}"
    hit = folder.is_dir()
    if hit:
        samples = EncodedSamples.open_folder(folder)
    else:
        if (run_dir / CACHE_DIR).is_dir():
            shutil.rmtree(run_dir / CACHE_DIR)  # an older encoding of other inputs
        (run_dir / CACHE_DIR).mkdir(parents=True)
        samples = encode_samples(dataset, labels, plan, out=folder)
    prepared = RiskData(data, labels_path, dataset, labels, plan, samples, hit)
    for split in ("train", "tuning"):
        y = np.asarray(samples.label)[prepared.indices(split)]
        if len(np.unique(y)) < 2:
            raise InputError(
                f"{labels_path}: the {split} split has {len(y)} labelled samples with "
                f"{int(y.sum()) if len(y) else 0} events; training needs both outcomes in "
                "train and tuning (a larger cohort, or other splits in the MEDS metadata)"
            )
    return prepared
