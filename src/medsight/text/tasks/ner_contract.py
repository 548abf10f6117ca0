"""``model.json`` of a `text-ner` run: what made it and how to rebuild its tagger.

``{"task": "text-ner", "model_name": "bilstm-crf", "class_names": [span types],
"labels": "entities"|"phi", "tags": [BIO tags], "data": ..., "data_sha256": ..., "seed": ...,
"tuning_f1": ..., "best_epoch": ..., "train_seconds": ..., "versions": {...}}``; the sizes are
in ``plan.json``, the vocabularies in ``vocabulary.json``, the split's line numbers in
``splits.json``, the weights in ``model.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import medsight
from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.runs.contract import CONTRACT

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
    return write_text_atomic(run_dir / CONTRACT, contract.model_dump_json(indent=2) + "\n")


def read_contract(run_dir: Path) -> NerContract:
    """``RUN/model.json`` of a tagger run.

    Raises:
        InputError: missing (names the command that makes it) or not a text-ner contract.
    """
    path = Path(run_dir) / CONTRACT
    if not path.is_file():
        raise InputError(f"{path}: missing; {MISSING_RUN}")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        contract = NerContract.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise InputError(f"{path}: invalid model contract ({exc.__class__.__name__})") from None
    if contract.task != TASK:
        raise InputError(f"{path}: a {contract.task!r} run, not a {TASK} run")
    return contract
