"""The task registry as the verbs see it: `get_task` and `task_of_run`, every modality registered.

Registering imports every modality (torch, Lightning, MONAI, spaCy), so it happens at the first
lookup, not when the CLI starts: `medsight --help` and the light verbs never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medsight.tasks import Task


def get_task(name: str) -> Task:
    """The registered task ``name`` (`medsight.tasks.get_task` once every modality is imported).

    Raises:
        InputError: no task of that name is registered.
    """
    import medsight.modalities  # noqa: F401  (registers every task plug-in)
    from medsight.tasks import get_task as registered

    return registered(name)


def task_of_run(run_dir: Path) -> Task:
    """The task that made ``run_dir`` (`medsight.tasks.task_of_run`, every modality imported).

    Raises:
        InputError: the folder is not a run, or its task is not registered.
    """
    from medsight.tasks.registry import read_run_task

    # the run's contract first: a wrong folder is reported without importing any modality
    return get_task(read_run_task(Path(run_dir)))
