"""A run folder's list of member models (K-fold ensembles), read safely.

``ensemble.json`` names sub-folders of the run (``fold_1`` ...), each a full checkpoint.
Names are checked against a strict pattern so a crafted file cannot point outside the run.
"""

from __future__ import annotations

from pathlib import Path

from medsight.imaging.models.checkpoint import ModelContract, read_contract
from medsight.runs.ensemble import ensemble_members


def read_run_contract(run_dir: Path) -> ModelContract:
    """The contract of a run: its own ``model.json``, or its first ensemble member's.

    Raises:
        InputError: no readable contract (see `read_contract`), or a bad ``ensemble.json``.
    """
    members = ensemble_members(run_dir)
    return read_contract(members[0] if members else run_dir)
