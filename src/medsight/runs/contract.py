"""The task a run folder was made by, read from its contract without loading any modality.

``model.json`` (or, for a K-fold ensemble, the first member's) records ``task``; runs made
before the field existed were classifiers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.runs.ensemble import ensemble_members

ContractT = TypeVar("ContractT", bound=BaseModel)

CONTRACT = "model.json"


def read_run_task(run_dir: Path) -> str:
    """The ``task`` recorded in ``run_dir``'s contract.

    Raises:
        InputError: no readable ``model.json`` (or a bad ``ensemble.json``).
    """
    members = ensemble_members(run_dir)
    path = (members[0] if members else run_dir) / CONTRACT
    if not path.is_file():
        raise InputError(f"{path}: missing; train a model first (`medsight demo` makes one)")
    try:
        task = json.loads(path.read_text(encoding="utf-8")).get("task", "classify")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError(f"{path}: invalid model contract (not a JSON object)") from None
    if not isinstance(task, str):
        raise InputError(f"{path}: invalid model contract (task is not a string)")
    return task


WEIGHTS = "model.safetensors"


class RunSummary(BaseModel):
    """The modality-independent part of a contract: what a release index records."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    model_name: str
    task: str = "classify"
    class_names: list[str]


def read_run_summary(run_dir: Path) -> RunSummary:
    """Task, model name and class names from ``run_dir/model.json`` (weights are not read).

    Raises:
        InputError: ``model.json`` is missing or invalid.
    """
    path = Path(run_dir) / CONTRACT
    if not path.is_file():
        raise InputError(f"{path}: missing; train a model first (`medsight demo` makes one)")
    try:
        return RunSummary.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise InputError(f"{path}: invalid model contract ({first})") from None


def write_contract(run_dir: Path, contract: BaseModel) -> Path:
    """Write a task's typed contract as ``RUN/model.json`` (atomically)."""
    return write_text_atomic(Path(run_dir) / CONTRACT, contract.model_dump_json(indent=2) + "\n")


def read_contract(run_dir: Path, schema: type[ContractT], task: str, missing: str) -> ContractT:
    """``RUN/model.json`` parsed as a task's contract ``schema`` (whose ``task`` is ``task``).

    Args:
        run_dir: The run folder.
        schema: The task's contract model (a pydantic model with a ``task`` field).
        task: The task name the contract must record.
        missing: What to tell a user whose run has no contract (the command that makes one).

    Raises:
        InputError: missing (says ``missing``), not valid JSON / not the schema, or another
            task's run.
    """
    path = Path(run_dir) / CONTRACT
    if not path.is_file():
        raise InputError(f"{path}: missing; {missing}")
    try:
        contract = schema.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise InputError(f"{path}: invalid model contract ({exc.__class__.__name__})") from None
    recorded = getattr(contract, "task", None)
    if recorded != task:
        raise InputError(f"{path}: a {recorded!r} run, not a {task} run")
    return contract
