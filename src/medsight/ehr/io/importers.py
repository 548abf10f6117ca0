"""``medsight ehr import SOURCE -o DATA --from KIND``: the importer of each source kind.

Every importer streams its source into a `MedsWriter` (the folder appears only when whole),
then the written folder is validated against the MEDS schemas. Importers are looked up by
kind and imported only when used (the FHIR one needs ``fhir.resources``, the CSV ones do not).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from medsight.ehr.io.meds_dataset import validate_meds
from medsight.ehr.io.subject_splits import read_splits
from medsight.errors import InputError


class Importer(Protocol):
    """Write the MEDS folder ``out`` from ``source``."""

    def __call__(
        self, source: Path, out: Path, *, splits: Mapping[int, str] | None, seed: int
    ) -> None: ...


#: kind -> (module, function) of its importer
IMPORTERS: dict[str, tuple[str, str]] = {
    "events-csv": ("medsight.ehr.io.events_csv", "import_events_csv"),
    "meds": ("medsight.ehr.io.meds_copy", "import_meds"),
    "mimic3": ("medsight.ehr.io.mimic3", "import_mimic3"),
    "mimic4": ("medsight.ehr.io.mimic4", "import_mimic4"),
    "eicu": ("medsight.ehr.io.eicu", "import_eicu"),
    "omop": ("medsight.ehr.io.omop", "import_omop"),
    "fhir": ("medsight.ehr.io.fhir_bulk", "import_fhir_bulk"),
}


def importer(kind: str) -> Importer:
    """The importer of a source kind.

    Raises:
        InputError: an unknown kind (lists the known ones).
    """
    if kind not in IMPORTERS:
        raise InputError(
            f"--from {kind!r} is not a known source kind; use one of {', '.join(IMPORTERS)}"
        )
    module, name = IMPORTERS[kind]
    function: Importer = getattr(importlib.import_module(module), name)
    return function


def import_source(
    source: Path, out: Path, kind: str, splits: Path | None = None, seed: int = 0
) -> dict[str, int]:
    """Convert ``source`` to the MEDS folder ``out`` and validate it.

    Args:
        source: the export (a file or a folder, by kind).
        out: the MEDS folder to write (replaced only once the new one is whole).
        kind: the source kind (a key of `IMPORTERS`).
        splits: a CSV of ``subject_id,split`` for subjects whose split is given (subject_id
            as it appears in the written MEDS data).
        seed: key of the default 80/10/10 split.

    Returns:
        ``{"subjects", "events", "codes"}`` of the written folder.

    Raises:
        InputError: an unknown kind, a missing source, or bad input (one line naming the
            file and row).
    """
    run = importer(kind)
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if splits is not None and not Path(splits).is_file():
        raise InputError(f"{splits}: no such splits file")
    given = read_splits(Path(splits)) if splits is not None else None
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise InputError(f"{out}: the output must not be the source or inside it")
    run(source, out, splits=given, seed=seed)
    return validate_meds(out)
