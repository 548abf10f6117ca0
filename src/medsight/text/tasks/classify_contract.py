"""``model.json`` of a text-classify run: what made it and how to rebuild and read its models.

``{"task": "text-classify", "model_name": <primary>, "class_names": [...first output's],
"outputs": {output: [classes]}, "models": [...], "baselines": ["tfidf-logistic"],
"tuning_macro_f1": {model: f1}, "data": ..., "labels": ..., "seed": ..., "versions": {...}}``;
the network sizes are ``spec`` (a `TextModelSpec`), the tokenizer is ``tokenizer.json``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

import medsight
from medsight.runs import contract as contract_file
from medsight.text.models.document_classifier import TextModelSpec

TASK = "text-classify"
#: what a user whose run has no contract is told
MISSING_RUN = "train a model first with `medsight train DATA --task text-classify -o RUN`"


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
    return contract_file.write_contract(run_dir, contract)


def read_contract(run_dir: Path) -> TextClassifyContract:
    """``RUN/model.json`` of this task's run (see `medsight.runs.contract.read_contract`)."""
    return contract_file.read_contract(
        run_dir,
        TextClassifyContract,
        TASK,
        "train a model first with `medsight train DATA --task text-classify -o RUN`",
    )
