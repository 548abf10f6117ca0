"""A run folder's list of member models (K-fold ensembles), read safely.

``ensemble.json`` names sub-folders of the run (``fold_1`` ...), each a full checkpoint.
Names are checked against a strict pattern so a crafted file cannot point outside the run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from medsight.errors import InputError

ENSEMBLE_FILE = "ensemble.json"
_MEMBER = re.compile(r"^fold_[0-9]{1,3}$")


def ensemble_members(run_dir: Path) -> list[Path]:
    """Member folders of ``run_dir``'s ensemble, or [] for a single-model run.

    Raises:
        InputError: ``ensemble.json`` is unreadable or names an invalid member.
    """
    path = run_dir / ENSEMBLE_FILE
    if not path.is_file():
        return []
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["members"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(f'{path}: expected {{"members": ["fold_1", ...]}}') from None
    if not names or not all(isinstance(n, str) and _MEMBER.match(n) for n in names):
        raise InputError(f"{path}: members must be fold_N folder names")
    return [run_dir / n for n in names]
