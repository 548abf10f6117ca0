"""``--from mimic4``: a MIMIC-IV export (``hosp/`` tables, lower-case names) to MEDS.

The folder may be the MIMIC-IV root (tables under ``hosp/``) or ``hosp/`` itself; files are
gzipped or not. ``subject_id`` is MIMIC's own. Rows as for MIMIC-III (`mimic3`), with
MIMIC-IV's columns:

- patients: ``MEDS_BIRTH`` on 1 January of ``anchor_year - anchor_age`` (MIMIC-IV gives the
  age in the shifted anchor year only: year precision), ``SEX//F|M``, ``MEDS_DEATH`` at dod
  unless an admission gives the time of death.
- admissions: as MIMIC-III (encounter, discharge, in-hospital death).
- diagnoses_icd: ``ICD9CM//`` or ``ICD10CM//`` by ``icd_version``, at the admission's
  discharge (coded after the stay, as in MIMIC-III).
- procedures_icd: ``ICD9PROC//`` or ``ICD10PCS//`` at its ``chartdate``.
- prescriptions: ``NDC//`` when given, else ``MIMIC4_DRUG//<drug>``, at ``starttime``.
- labevents: ``MIMIC4_ITEM//<itemid>`` with valuenum in valueuom (described from d_labitems).
- omr (outpatient measurements): ``MIMIC4_OMR//<result_name>`` at chartdate with the result
  as a number; blood pressure ``120/80`` becomes ``... Systolic`` and ``... Diastolic`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.io.csv_tables import find_table, read_chunks, require_table
from medsight.ehr.io.event_columns import event_columns, lookup, mapped
from medsight.ehr.io.event_times import ZoneState, parse_time_strings
from medsight.ehr.io.icd_codes import diagnosis_code, procedure_code
from medsight.ehr.io.meds_dataset import BIRTH, DEATH, MedsWriter
from medsight.ehr.io.mimic3 import (
    SEX,
    Admissions,
    item_labels,
    write_admissions,
    write_measurements,
    write_prescriptions,
)
from medsight.errors import InputError


def import_mimic4(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from a MIMIC-IV export (see the module docstring).

    Raises:
        InputError: not a folder, patients or admissions missing, or a bad value (names the
            file and row).
    """
    if not source.is_dir():
        raise InputError(
            f"{source}: --from mimic4 takes the export folder (hosp/patients.csv.gz, ...)"
        )
    hosp = source / "hosp" if (source / "hosp").is_dir() else source
    with MedsWriter(
        out, dataset_name="MIMIC-IV", source=str(source), splits=splits, seed=seed
    ) as w:
        admissions = write_admissions(w, require_table(hosp, "admissions"))
        write_patients(w, require_table(hosp, "patients"), admissions)
        write_diagnoses(w, find_table(hosp, "diagnoses_icd"), admissions)
        write_procedures(w, find_table(hosp, "procedures_icd"))
        write_prescriptions(w, find_table(hosp, "prescriptions"), "starttime", "MIMIC4")
        write_measurements(
            w, find_table(hosp, "labevents"), "MIMIC4_ITEM", item_labels(hosp, ("d_labitems",))
        )
        write_omr(w, find_table(hosp, "omr"))


def write_patients(writer: MedsWriter, path: Path, admissions: Admissions) -> None:
    """Birth (from anchor year and age), sex and death rows."""
    zones = ZoneState()
    for chunk in read_chunks(path, ("subject_id", "gender", "anchor_age", "anchor_year")):
        subject = chunk.integers("subject_id")
        n = len(chunk)
        born = pc.subtract(chunk.integers("anchor_year"), chunk.integers("anchor_age"))
        text = pa.array(
            [None if y is None else f"{y:04d}-01-01" for y in born.to_pylist()], pa.string()
        )
        birth = parse_time_strings(text, chunk.source, chunk.first_row, zones)
        writer.add(event_columns(subject, birth, pa.array([BIRTH] * n)))
        sex = mapped(chunk.text("gender"), lambda g: SEX.get(g.upper(), "SEX//UNK"))
        writer.add(event_columns(subject, None, pc.fill_null(sex, "SEX//UNK")))
        dod = parse_time_strings(chunk.text("dod"), chunk.source, chunk.first_row, zones)
        known = pc.is_in(
            subject, value_set=pa.array(sorted(admissions.died_in_hospital), pa.int64())
        )
        dod = pc.if_else(known, pa.scalar(None, pa.timestamp("us")), dod)
        writer.add(event_columns(subject, dod, pa.array([DEATH] * n)))


def _versioned(chunk_version: pa.Array, chunk_code: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(chunk_version, chunk_code, "|")


def _diagnosis(key: str) -> str | None:
    version, _, code = key.partition("|")
    return diagnosis_code(code, int(version) if version.isdigit() else None)


def _procedure(key: str) -> str | None:
    version, _, code = key.partition("|")
    return procedure_code(code, int(version) if version.isdigit() else None)


def write_diagnoses(writer: MedsWriter, path: Path | None, admissions: Admissions) -> None:
    """ICD-9/10 diagnoses at their admission's discharge."""
    if path is None:
        return
    for chunk in read_chunks(path, ("subject_id", "hadm_id", "icd_code", "icd_version")):
        subject = chunk.integers("subject_id")
        time = lookup(chunk.integers("hadm_id"), admissions.hadm_id, admissions.discharge)
        code = mapped(_versioned(chunk.text("icd_version"), chunk.text("icd_code")), _diagnosis)
        writer.add(event_columns(subject, time, code))


def write_procedures(writer: MedsWriter, path: Path | None) -> None:
    """ICD-9/10 procedures at their chartdate."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("subject_id", "chartdate", "icd_code", "icd_version")):
        subject = chunk.integers("subject_id")
        time = parse_time_strings(chunk.text("chartdate"), chunk.source, chunk.first_row, zones)
        code = mapped(_versioned(chunk.text("icd_version"), chunk.text("icd_code")), _procedure)
        writer.add(event_columns(subject, time, code))


def write_omr(writer: MedsWriter, path: Path | None) -> None:
    """Outpatient measurements (blood pressure split into its two numbers)."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("subject_id", "chartdate", "result_name", "result_value")):
        subject = chunk.integers("subject_id")
        time = parse_time_strings(chunk.text("chartdate"), chunk.source, chunk.first_row, zones)
        name = chunk.text("result_name")
        value = chunk.text("result_value")
        pairs = [v.split("/", 1) if v is not None and "/" in v else None for v in value.to_pylist()]
        paired = pa.array([p is not None for p in pairs])
        first = pa.array(
            [p[0] if p else v for p, v in zip(pairs, value.to_pylist(), strict=True)], pa.string()
        )
        second = pa.array([p[1] if p else None for p in pairs], pa.string())
        code = pc.binary_join_element_wise(pa.scalar("MIMIC4_OMR//"), name, "")
        for suffix, text, keep in (
            ("", first, pc.invert(paired)),
            (" Systolic", first, paired),
            (" Diastolic", second, paired),
        ):
            rows = pc.if_else(
                keep,
                pc.binary_join_element_wise(code, pa.scalar(suffix), ""),
                pa.scalar(None, pa.string()),
            )
            writer.add(event_columns(subject, time, rows, _numbers(text)))


def _numbers(text: pa.Array) -> pa.Array:
    try:
        values = pc.utf8_trim_whitespace(text).cast(pa.float64())
    except pa.ArrowInvalid:
        parsed = []
        for item in text.to_pylist():
            try:
                parsed.append(float(item) if item is not None else None)
            except ValueError:
                parsed.append(None)
        values = pa.array(parsed, pa.float64())
    return pc.if_else(
        pc.fill_null(pc.is_finite(values), False), values, pa.scalar(None, pa.float64())
    )
