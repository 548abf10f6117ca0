"""The task a run folder was made by, read from its contract without loading any modality.

``model.json`` (or, for a K-fold ensemble, the first member's) records ``task``; runs made
before the field existed were classifiers.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from medsight.errors import InputError
from medsight.runs.ensemble import ensemble_members

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
