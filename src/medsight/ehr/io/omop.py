"""``--from omop``: OMOP CDM v5.4 tables exported as CSV to MEDS.

``person_id`` is the subject_id. Codes keep the source vocabulary when the table's
``*_source_value`` is recognisable by shape (OMOP exports rarely ship the CONCEPT table, so
the vocabulary is read from the code itself): conditions ``ICD9CM//`` / ``ICD10CM//``,
procedures ``CPT4//`` / ``ICD9PROC//`` / ``ICD10PCS//``, drugs ``NDC//`` (11 digits),
measurements ``LOINC//``; otherwise the standard concept, ``OMOP_CONCEPT//<concept_id>``.

Rows: person ``MEDS_BIRTH`` (birth_datetime, else year/month/day with missing parts as 1),
``SEX//M`` (gender_concept_id 8507) / ``SEX//F`` (8532) / ``SEX//UNK``; visit_occurrence
``ENCOUNTER//<kind>`` at the start (9201 inpatient, 9203 emergency, 9202 ambulatory, ...;
other visit concepts by id) and ``DISCHARGE//inpatient`` at the end of inpatient stays; condition,
drug_exposure, procedure_occurrence and measurement (value_as_number in unit_source_value)
at their start datetime (else date); death ``MEDS_DEATH``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.io.csv_tables import Chunk, find_table, read_chunks, require_table
from medsight.ehr.io.event_columns import event_columns, mapped, prefixed
from medsight.ehr.io.event_times import ZoneState, parse_time_strings
from medsight.ehr.io.icd_codes import diagnosis_code, procedure_code
from medsight.ehr.io.meds_dataset import BIRTH, DEATH, MedsWriter
from medsight.errors import InputError

SEX = {"8507": "SEX//M", "8532": "SEX//F"}
#: standard visit concepts -> ENCOUNTER//<kind>
VISIT_KIND = {
    "9201": "inpatient",
    "262": "inpatient",
    "581379": "inpatient",
    "32037": "inpatient",
    "8717": "inpatient",
    "581385": "observation",
    "9203": "emergency",
    "8870": "emergency",
    "9202": "ambulatory",
    "581477": "ambulatory",
    "38004207": "ambulatory",
    "8883": "ambulatory",
    "5083": "virtual",
    "581476": "home",
}
#: only inpatient stays get a DISCHARGE row: discharges are what readmission labels key on
DISCHARGED = frozenset({"inpatient"})
LOINC_SHAPE = re.compile(r"^[0-9]{1,7}-[0-9]$")
NDC_SHAPE = re.compile(r"^[0-9]{11}$")

CodeRule = Callable[[str], str | None]


def _condition(value: str) -> str | None:
    return diagnosis_code(value)


def _procedure(value: str) -> str | None:
    return procedure_code(value)


def _drug(value: str) -> str | None:
    text = value.strip().replace("-", "")
    return f"NDC//{text}" if NDC_SHAPE.match(text) else None


def _measurement(value: str) -> str | None:
    text = value.strip()
    return f"LOINC//{text}" if LOINC_SHAPE.match(text) else None


#: table -> (time columns in order of preference, concept column, source value column, rule)
TABLES: dict[str, tuple[tuple[str, ...], str, str, CodeRule]] = {
    "condition_occurrence": (
        ("condition_start_datetime", "condition_start_date"),
        "condition_concept_id",
        "condition_source_value",
        _condition,
    ),
    "drug_exposure": (
        ("drug_exposure_start_datetime", "drug_exposure_start_date"),
        "drug_concept_id",
        "drug_source_value",
        _drug,
    ),
    "procedure_occurrence": (
        ("procedure_datetime", "procedure_date"),
        "procedure_concept_id",
        "procedure_source_value",
        _procedure,
    ),
    "measurement": (
        ("measurement_datetime", "measurement_date"),
        "measurement_concept_id",
        "measurement_source_value",
        _measurement,
    ),
}


def import_omop(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from an OMOP CDM CSV folder (see the module docstring).

    Raises:
        InputError: not a folder, no person table, or a bad value (names the file and row).
    """
    if not source.is_dir():
        raise InputError(f"{source}: --from omop takes the folder of CDM tables (person.csv, ...)")
    with MedsWriter(out, dataset_name="OMOP", source=str(source), splits=splits, seed=seed) as w:
        write_persons(w, require_table(source, "person"))
        write_visits(w, find_table(source, "visit_occurrence"))
        for name, spec in TABLES.items():
            write_events(w, find_table(source, name), *spec)
        write_deaths(w, find_table(source, "death"))


def _time(chunk: Chunk, columns: tuple[str, ...], zones: ZoneState) -> pa.Array:
    """The first non-blank of the time columns (a datetime before its date)."""
    times = [
        parse_time_strings(chunk.text(name), chunk.source, chunk.first_row, zones)
        for name in columns
        if name in chunk.table.column_names
    ]
    if not times:
        return pa.nulls(len(chunk), pa.timestamp("us"))
    return pc.coalesce(*times) if len(times) > 1 else times[0]


def write_persons(writer: MedsWriter, path: Path) -> None:
    """Birth and sex rows."""
    zones = ZoneState()
    for chunk in read_chunks(path, ("person_id", "gender_concept_id", "year_of_birth")):
        subject = chunk.integers("person_id")
        year = chunk.integers("year_of_birth", required=False)
        month = pc.fill_null(chunk.integers("month_of_birth", required=False), 1)
        day = pc.fill_null(chunk.integers("day_of_birth", required=False), 1)
        parts = [
            None if y is None else f"{y:04d}-{m:02d}-{d:02d}"
            for y, m, d in zip(year.to_pylist(), month.to_pylist(), day.to_pylist(), strict=True)
        ]
        from_parts = parse_time_strings(
            pa.array(parts, pa.string()), chunk.source, chunk.first_row, zones
        )
        given = parse_time_strings(
            chunk.text("birth_datetime"), chunk.source, chunk.first_row, zones
        )
        writer.add(
            event_columns(subject, pc.coalesce(given, from_parts), pa.array([BIRTH] * len(chunk)))
        )
        sex = mapped(chunk.text("gender_concept_id"), lambda c: SEX.get(c, "SEX//UNK"))
        writer.add(event_columns(subject, None, pc.fill_null(sex, "SEX//UNK")))


def _visit_kind(concept: str) -> str:
    return VISIT_KIND.get(concept, concept)


def write_visits(writer: MedsWriter, path: Path | None) -> None:
    """Encounter rows at visit start, discharge rows at the end of stays."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("person_id", "visit_concept_id", "visit_start_date")):
        subject = chunk.integers("person_id")
        kind = mapped(chunk.text("visit_concept_id"), _visit_kind)
        start = _time(chunk, ("visit_start_datetime", "visit_start_date"), zones)
        end = _time(chunk, ("visit_end_datetime", "visit_end_date"), zones)
        writer.add(event_columns(subject, start, prefixed("ENCOUNTER", kind)))
        stay = pc.is_in(kind, value_set=pa.array(sorted(DISCHARGED)))
        discharge = pc.if_else(stay, prefixed("DISCHARGE", kind), pa.scalar(None, pa.string()))
        writer.add(
            event_columns(subject, end, discharge, None, chunk.text("discharge_to_source_value"))
        )


def write_events(
    writer: MedsWriter,
    path: Path | None,
    time_columns: tuple[str, ...],
    concept_column: str,
    source_column: str,
    rule: CodeRule,
) -> None:
    """Coded rows of one clinical table (values and units for measurement)."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("person_id", concept_column)):
        subject = chunk.integers("person_id")
        time = _time(chunk, time_columns, zones)
        concept = chunk.text(concept_column)
        concept = pc.if_else(
            pc.fill_null(pc.equal(concept, "0"), False), pa.scalar(None, pa.string()), concept
        )
        code = pc.coalesce(
            mapped(chunk.text(source_column), rule), prefixed("OMOP_CONCEPT", concept)
        )
        if "value_as_number" in chunk.table.column_names:
            value = chunk.floats("value_as_number")
            text = pc.if_else(
                value.is_null(), chunk.text("value_source_value"), pa.scalar(None, pa.string())
            )
            writer.add(
                event_columns(subject, time, code, value, text, chunk.text("unit_source_value"))
            )
        else:
            writer.add(event_columns(subject, time, code))


def write_deaths(writer: MedsWriter, path: Path | None) -> None:
    """MEDS_DEATH rows."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("person_id",)):
        subject = chunk.integers("person_id")
        time = _time(chunk, ("death_datetime", "death_date"), zones)
        writer.add(event_columns(subject, time, pa.array([DEATH] * len(chunk))))
