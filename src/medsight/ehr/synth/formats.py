"""The output formats of `medsight synth ehr`: one writer per format, the same cohort in each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medsight.ehr.synth.events_csv_writer import write_events_csv_cohort
from medsight.ehr.synth.fhir_writer import write_fhir_cohort
from medsight.ehr.synth.meds_output import write_meds_cohort
from medsight.errors import InputError

Writer = Callable[[Path, int, int, Callable[[int], None] | None], Path]
FORMATS: dict[str, Writer] = {
    "meds": write_meds_cohort,
    "fhir": write_fhir_cohort,
    "events-csv": write_events_csv_cohort,
}


def write_synthetic_ehr(
    out: Path,
    patients: int,
    seed: int,
    fmt: str = "meds",
    on_chunk: Callable[[int], None] | None = None,
) -> Path:
    """Write the synthetic diabetes cohort to ``out`` in ``fmt`` (meds, fhir or events-csv).

    Raises:
        InputError: an unknown format, or fewer than one patient.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if patients < 1:
        raise InputError(f"--patients must be at least 1, got {patients}")
    return FORMATS[fmt](Path(out), patients, seed, on_chunk)
