"""``model.json`` of a text-classify run: what made it and how to rebuild and read its models.

``{"task": "text-classify", "model_name": <primary>, "class_names": [...first output's],
"outputs": {output: [classes]}, "models": [...], "baselines": ["tfidf-logistic"],
"tuning_macro_f1": {model: f1}, "data": ..., "labels": ..., "seed": ..., "versions": {...}}``;
the network sizes are ``spec`` (a `TextModelSpec`), the tokenizer is ``tokenizer.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

import medsight
from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.runs.contract import CONTRACT
from medsight.text.models.document_classifier import TextModelSpec

TASK = "text-classify"


class TextClassifyContract(BaseModel):
    """The contract of a text-classify run (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    task: str = TASK
    model_name: str
    #: the first output's classes (what the release index shows)
    class_names: list[str]
    outputs: dict[str, list[str]]
    models: list[str]
    baselines: list[str] = []
    spec: TextModelSpec
    tuning_macro_f1: dict[str, float | None] = {}
    #: training wall time per encoder (seconds)
    train_seconds: dict[str, float] = {}
    data: str = ""
    labels: str = ""
    seed: int = 0
    versions: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """Versions recorded next to every text-classify model."""
    import sklearn
    import tokenizers
    import torch

    return {
        "medsight": medsight.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "scikit-learn": sklearn.__version__,
    }


def write_contract(run_dir: Path, contract: TextClassifyContract) -> Path:
    """Write ``RUN/model.json`` (atomically)."""
    return write_text_atomic(run_dir / CONTRACT, contract.model_dump_json(indent=2) + "\n")


def read_contract(run_dir: Path) -> TextClassifyContract:
    """``RUN/model.json`` of a text-classify run.

    Raises:
        InputError: missing (names the command that makes it) or not such a contract.
    """
    path = Path(run_dir) / CONTRACT
    if not path.is_file():
        raise InputError(
            f"{path}: missing; train a model first with `medsight train DATA "
            "--task text-classify -o RUN`"
        )
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        contract = TextClassifyContract.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise InputError(f"{path}: invalid model contract ({exc.__class__.__name__})") from None
    if contract.task != TASK:
        raise InputError(f"{path}: a {contract.task!r} run, not a {TASK} run")
    return contract
