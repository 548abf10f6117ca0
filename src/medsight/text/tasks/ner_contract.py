"""``model.json`` of a `text-ner` run: what made it and how to rebuild its tagger.

``{"task": "text-ner", "model_name": "bilstm-crf", "class_names": [span types],
"labels": "entities"|"phi", "tags": [BIO tags], "data": ..., "data_sha256": ..., "seed": ...,
"tuning_f1": ..., "best_epoch": ..., "train_seconds": ..., "versions": {...}}``; the sizes are
in ``plan.json``, the vocabularies in ``vocabulary.json``, the split's line numbers in
``splits.json``, the weights in ``model.safetensors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

import medsight
from medsight.runs import contract as contract_file

TASK: Literal["text-ner"] = "text-ner"
VOCABULARY_FILE = "vocabulary.json"
SPLITS_FILE = "splits.json"
MISSING_RUN = "train a tagger first with `medsight train DATA.jsonl --task text-ner -o RUN`"


class NerContract(BaseModel):
    """The contract of a tagger run (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    task: str = TASK
    model_name: str
    class_names: list[str]
    labels: str
    tags: list[str]
    data: str = ""
    data_sha256: str = ""
    seed: int = 0
    tuning_f1: float | None = None
    best_epoch: int = 0
    train_seconds: float = 0.0
    #: training spans that start or end inside a token (the tagger can only widen them)
    misaligned_train_spans: int = 0
    versions: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """Versions recorded next to every tagger."""
    import numpy
    import torch

    return {
        "medsight": medsight.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def write_contract(run_dir: Path, contract: NerContract) -> Path:
    """Write ``RUN/model.json`` (atomically)."""
    return contract_file.write_contract(run_dir, contract)


def read_contract(run_dir: Path) -> NerContract:
    """``RUN/model.json`` of this task's run (see `medsight.runs.contract.read_contract`)."""
    return contract_file.read_contract(run_dir, NerContract, TASK, MISSING_RUN)
