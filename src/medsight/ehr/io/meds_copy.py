"""``--from meds``: an existing MEDS folder, validated, then copied (hard-linked where possible).

The copy is made beside ``out`` and renamed into place only once whole, so a failed copy
leaves nothing; files are hard-linked when source and output share a filesystem (no bytes
copied; MEDS shards are never modified in place, so sharing them is safe) and copied
otherwise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from medsight.ehr.io.meds_dataset import validate_meds
from medsight.errors import InputError


def import_meds(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Validate the MEDS folder ``source`` and copy it to ``out``.

    Args:
        source: a MEDS folder.
        out: where the copy goes (replaced once the copy is whole).
        splits: must be None: a MEDS folder's splits are its data/ layout.
        seed: unused (a MEDS folder has its splits).

    Raises:
        InputError: ``source`` is not a valid MEDS folder, or splits were given.
    """
    del seed
    if splits:
        raise InputError(
            f"{source}: --splits does not apply to --from meds (its splits are its data/ folders)"
        )
    validate_meds(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
