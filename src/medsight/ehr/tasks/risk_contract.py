"""``model.json`` of a risk run: what made it and how to rebuild and read its models.

``{"task": "ehr-risk", "model_name": <primary>, "class_names": ["no event", "event"],
"models": [...], "baselines": [...], "label_definition": ..., "data": ..., "labels": ...,
"tuning_auroc": {model: auc}, "seed": ..., "versions": {...}}``; the network sizes,
vocabulary and value statistics are in ``plan.json`` beside it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

import medsight
from medsight.runs import contract as contract_file
from medsight.runs.ensemble import ensemble_members

TASK = "ehr-risk"
#: what a user whose run has no contract is told
MISSING_RUN = (
    "train a model first with `medsight train DATA --task ehr-risk --labels LABELS -o RUN`"
)
CLASS_NAMES = ["no event", "event"]


class RiskContract(BaseModel):
    """The contract of a risk run (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    task: str = TASK
    model_name: str
    class_names: list[str] = CLASS_NAMES
    models: list[str]
    baselines: list[str] = []
    label_definition: str = ""
    data: str = ""
    labels: str = ""
    tuning_auroc: dict[str, float | None] = {}
    seed: int = 0
    fold: int | None = None
    versions: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """Versions recorded next to every risk model."""
    import numpy
    import pyarrow
    import torch

    return {
        "medsight": medsight.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }


def contract_of_run(run_dir: Path) -> RiskContract:
    """The contract of a run, or of a K-fold run's first fold (see `read_contract`)."""
    members = ensemble_members(Path(run_dir))
    return read_contract(members[0] if members else Path(run_dir))


def write_contract(run_dir: Path, contract: RiskContract) -> Path:
    """Write ``RUN/model.json`` (atomically)."""
    return contract_file.write_contract(run_dir, contract)


def read_contract(run_dir: Path) -> RiskContract:
    """``RUN/model.json`` of this task's run (see `medsight.runs.contract.read_contract`)."""
    return contract_file.read_contract(
        run_dir,
        RiskContract,
        TASK,
        "train a model first with `medsight train DATA --task ehr-risk --labels LABELS -o RUN`",
    )
