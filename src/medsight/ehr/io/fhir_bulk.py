"""``--from fhir``: FHIR R4 Bulk Data export (NDJSON) to MEDS.

SOURCE is an ``.ndjson`` file or a folder of them (``Patient.ndjson``, ``Observation.ndjson``,
..., or files mixing types; ``.ndjson.gz`` too); a ``.json`` file holding one Bundle is read
as its entries. One resource per line, each validated with ``fhir.resources`` and mapped by
`fhir_events` (Patient, Encounter, Condition, Observation, MedicationRequest,
MedicationStatement, Procedure; other types are validated and skipped).

Subjects: FHIR patient ids are strings, MEDS subject_ids integers. Each Patient id gets its
1-based rank among the export's sorted Patient ids (the same export always gives the same
numbers); the ids themselves, names and identifiers are not written. A first pass reads the
Patient ids (memory: one id per patient), a second streams the resources in batches.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from medsight.ehr.io.fhir_events import (
    RESOURCE_TYPES,
    Row,
    lookup_subject,
    resource_rows,
    rows_table,
    subject_key,
    validate_resource,
)
from medsight.ehr.io.meds_dataset import MedsWriter
from medsight.errors import InputError

#: resources mapped before their rows go to the writer
BATCH = 20_000
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".json", ".json.gz")


def fhir_files(source: Path) -> list[Path]:
    """The NDJSON (or Bundle JSON) files of an export, sorted.

    Raises:
        InputError: a folder without any.
    """
    if source.is_file():
        return [source]
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
    )
    if not files:
        raise InputError(f"{source}: no .ndjson files (a FHIR Bulk Data export)")
    return files


def _open(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_resources(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, resource) of each resource in a file: ``FILE: line N`` per NDJSON line.

    A ``.json`` file may hold a single resource or Bundle (its entries are the resources).

    Raises:
        InputError: a line that is not a JSON object with a resourceType (the file is not
            FHIR NDJSON).
    """
    try:
        with _open(path) as handle:
            if path.name.lower().endswith((".json", ".json.gz")):
                text = handle.read()
                try:
                    whole = json.loads(text)
                except json.JSONDecodeError:
                    whole = None
                if whole is not None:
                    yield from _resource(f"{path}: line 1", whole)
                    return
                lines: Iterator[str] = iter(text.splitlines())
            else:
                lines = handle
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}: line {number}"
                try:
                    resource = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(
                        f"{where}: not FHIR NDJSON (one JSON resource per line)"
                    ) from None
                yield from _resource(where, resource)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not FHIR NDJSON (not UTF-8 text)") from None


def _resource(where: str, resource: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise InputError(f"{where}: not a FHIR resource (a JSON object with a resourceType)")
    if resource["resourceType"] == "Bundle":
        for index, entry in enumerate(resource.get("entry") or [], start=1):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield f"{where}: entry {index}", entry["resource"]
        return
    yield where, resource


def patient_ids(files: list[Path]) -> dict[str, int]:
    """Patient id -> subject_id (1-based rank of the sorted ids).

    Raises:
        InputError: a file that is not FHIR, a Patient without an id, or no Patient at all.
    """
    ids: set[str] = set()
    for path in files:
        for where, resource in read_resources(path):
            if resource.get("resourceType") != "Patient":
                continue
            if not resource.get("id"):
                raise InputError(f"{where}: Patient has no id (resources cannot refer to it)")
            ids.add(str(resource["id"]))
    if not ids:
        raise InputError(f"{files[0].parent}: no Patient resources in the export")
    return {pid: n for n, pid in enumerate(sorted(ids), start=1)}


def import_fhir_bulk(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from a FHIR Bulk Data export (see the module docstring).

    Raises:
        InputError: a file that is not FHIR NDJSON, an invalid resource, or a resource that
            refers to a patient the export has no Patient for (names the file and line).
    """
    files = fhir_files(source)
    subjects = patient_ids(files)
    with MedsWriter(out, dataset_name="FHIR", source=str(source), splits=splits, seed=seed) as w:
        rows: list[Row] = []
        for path in files:
            for where, resource in read_resources(path):
                model = validate_resource(resource, where)
                if model.get_resource_type() not in RESOURCE_TYPES:
                    continue
                key = subject_key(model)
                subject_id = lookup_subject(key, subjects)
                if subject_id is None:
                    if key is not None:
                        raise InputError(f"{where}: refers to a patient with no Patient resource")
                    continue
                rows.extend(resource_rows(model, subject_id))
                if len(rows) >= BATCH:
                    w.add(rows_table(rows, units=True))
                    rows = []
        if rows:
            w.add(rows_table(rows, units=True))
