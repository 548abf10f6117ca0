"""``--from mimic3``: a MIMIC-III export folder (its public CSV layout) to MEDS.

Tables are found by name in any case, gzipped or not (``PATIENTS.csv.gz``, ``patients.csv``);
``subject_id`` is MIMIC's own. Rows:

- PATIENTS: ``MEDS_BIRTH`` at DOB (patients older than 89 have MIMIC's shifted DOB, about
  300 years before admission, kept as given), ``SEX//F|M`` (static), ``MEDS_DEATH`` at DOD
  unless an admission already gives the time of death.
- ADMISSIONS: ``ENCOUNTER//inpatient`` at ADMITTIME (text_value: admission type),
  ``DISCHARGE//inpatient`` at DISCHTIME (text_value: discharge location), ``MEDS_DEATH`` at
  DEATHTIME (at DISCHTIME when HOSPITAL_EXPIRE_FLAG is 1 without a DEATHTIME).
- DIAGNOSES_ICD (``ICD9CM//428.0``) and PROCEDURES_ICD (``ICD9PROC//36.05``) at the
  admission's DISCHTIME: MIMIC-III codes them for billing from the discharge summary, after
  the stay, and gives them no time of their own; placing them at admission would hand a model
  the stay's final diagnoses at its start (label leakage for in-hospital predictions).
- PRESCRIPTIONS at STARTDATE: ``NDC//<ndc>`` when the NDC is given (not blank or 0), else
  ``MIMIC3_DRUG//<drug name>``.
- LABEVENTS and CHARTEVENTS, when present, at CHARTTIME: ``MIMIC3_ITEM//<itemid>`` with
  VALUENUM and VALUEUOM (text VALUE when there is no number); described from D_LABITEMS /
  D_ITEMS when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.io.csv_tables import find_table, read_chunks, require_table
from medsight.ehr.io.event_columns import event_columns, lookup, mapped, prefixed
from medsight.ehr.io.event_times import ZoneState, parse_time_strings
from medsight.ehr.io.icd_codes import icd9_diagnosis, icd9_procedure
from medsight.ehr.io.meds_dataset import BIRTH, DEATH, MedsWriter
from medsight.errors import InputError

SEX = {"F": "SEX//F", "M": "SEX//M"}


@dataclass
class Admissions:
    """Each admission's subject and discharge time, and who died in hospital."""

    hadm_id: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    discharge: pa.Array = field(default_factory=lambda: pa.array([], pa.timestamp("us")))
    died_in_hospital: set[int] = field(default_factory=set)


def import_mimic3(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from a MIMIC-III export folder.

    Raises:
        InputError: not a folder, a required table (PATIENTS, ADMISSIONS) missing, or a bad
            value (names the file and row).
    """
    if not source.is_dir():
        raise InputError(f"{source}: --from mimic3 takes the export folder (PATIENTS.csv, ...)")
    with MedsWriter(
        out, dataset_name="MIMIC-III", source=str(source), splits=splits, seed=seed
    ) as writer:
        admissions = write_admissions(writer, require_table(source, "ADMISSIONS"))
        write_patients(writer, require_table(source, "PATIENTS"), admissions)
        write_icd(writer, find_table(source, "DIAGNOSES_ICD"), admissions, "icd9_code", "ICD9CM")
        write_icd(writer, find_table(source, "PROCEDURES_ICD"), admissions, "icd9_code", "ICD9PROC")
        write_prescriptions(writer, find_table(source, "PRESCRIPTIONS"), "startdate", "MIMIC3")
        items = item_labels(source, ("D_LABITEMS", "D_ITEMS"))
        for name in ("LABEVENTS", "CHARTEVENTS"):
            write_measurements(writer, find_table(source, name), "MIMIC3_ITEM", items)


def write_admissions(writer: MedsWriter, path: Path) -> Admissions:
    """Encounter, discharge and in-hospital death rows; returns the admissions index."""
    zones = ZoneState()
    hadm: list[pa.Array] = []
    discharge: list[pa.Array] = []
    died: set[int] = set()
    required = ("subject_id", "hadm_id", "admittime", "dischtime")
    for chunk in read_chunks(path, required):
        subject = chunk.integers("subject_id")
        admit = parse_time_strings(chunk.text("admittime"), chunk.source, chunk.first_row, zones)
        disch = parse_time_strings(chunk.text("dischtime"), chunk.source, chunk.first_row, zones)
        death = parse_time_strings(chunk.text("deathtime"), chunk.source, chunk.first_row, zones)
        expired = pc.equal(chunk.text("hospital_expire_flag"), "1")
        death = pc.if_else(pc.and_(pc.fill_null(expired, False), death.is_null()), disch, death)
        n = len(chunk)
        writer.add(
            event_columns(
                subject,
                admit,
                pa.array(["ENCOUNTER//inpatient"] * n),
                None,
                chunk.text("admission_type"),
            )
        )
        writer.add(
            event_columns(
                subject,
                disch,
                pa.array(["DISCHARGE//inpatient"] * n),
                None,
                chunk.text("discharge_location"),
            )
        )
        writer.add(event_columns(subject, death, pa.array([DEATH] * n)))
        died.update(pc.filter(subject, death.is_valid()).to_pylist())
        hadm.append(chunk.integers("hadm_id"))
        discharge.append(disch)
    if not hadm:
        raise InputError(f"{path}: no admissions")
    return Admissions(pa.concat_arrays(hadm), pa.concat_arrays(discharge), died)


def write_patients(writer: MedsWriter, path: Path, admissions: Admissions) -> None:
    """Birth, sex and (when no admission gave it) death rows."""
    zones = ZoneState()
    for chunk in read_chunks(path, ("subject_id", "gender", "dob")):
        subject = chunk.integers("subject_id")
        n = len(chunk)
        dob = parse_time_strings(chunk.text("dob"), chunk.source, chunk.first_row, zones)
        writer.add(event_columns(subject, dob, pa.array([BIRTH] * n)))
        sex = mapped(chunk.text("gender"), lambda g: SEX.get(g.upper(), "SEX//UNK"))
        writer.add(event_columns(subject, None, pc.fill_null(sex, "SEX//UNK")))
        dod = parse_time_strings(chunk.text("dod"), chunk.source, chunk.first_row, zones)
        known = pc.is_in(
            subject, value_set=pa.array(sorted(admissions.died_in_hospital), pa.int64())
        )
        dod = pc.if_else(known, pa.scalar(None, pa.timestamp("us")), dod)
        writer.add(event_columns(subject, dod, pa.array([DEATH] * n)))


def write_icd(
    writer: MedsWriter, path: Path | None, admissions: Admissions, column: str, vocabulary: str
) -> None:
    """Diagnosis or procedure codes at their admission's discharge (see the module docstring)."""
    if path is None:
        return
    formatter = icd9_diagnosis if vocabulary == "ICD9CM" else icd9_procedure
    for chunk in read_chunks(path, ("subject_id", "hadm_id", column)):
        subject = chunk.integers("subject_id")
        time = lookup(chunk.integers("hadm_id"), admissions.hadm_id, admissions.discharge)
        code = prefixed(vocabulary, mapped(chunk.text(column), formatter))
        writer.add(event_columns(subject, time, code))


def write_prescriptions(
    writer: MedsWriter, path: Path | None, time_column: str, prefix: str
) -> None:
    """Drug rows: ``NDC//`` when the NDC is given, else ``<PREFIX>_DRUG//<name>``."""
    if path is None:
        return
    zones = ZoneState()
    for chunk in read_chunks(path, ("subject_id", time_column, "drug")):
        subject = chunk.integers("subject_id")
        time = parse_time_strings(chunk.text(time_column), chunk.source, chunk.first_row, zones)
        ndc = chunk.text("ndc")
        ndc = pc.if_else(
            pc.fill_null(pc.match_substring_regex(ndc, r"^0*$"), True),
            pa.scalar(None, pa.string()),
            ndc,
        )
        code = pc.coalesce(prefixed("NDC", ndc), prefixed(f"{prefix}_DRUG", chunk.text("drug")))
        writer.add(event_columns(subject, time, code))


def item_labels(source: Path, tables: tuple[str, ...]) -> dict[str, str]:
    """itemid -> label from the dictionary tables that are present."""
    labels: dict[str, str] = {}
    for name in tables:
        path = find_table(source, name)
        if path is None:
            continue
        for chunk in read_chunks(path, ("itemid", "label")):
            ids = chunk.text("itemid").to_pylist()
            for item, label in zip(ids, chunk.text("label").to_pylist(), strict=True):
                if item is not None and label is not None:
                    labels.setdefault(item, label)
    return labels


def write_measurements(
    writer: MedsWriter, path: Path | None, vocabulary: str, labels: Mapping[str, str]
) -> None:
    """Lab or chart rows: ``<VOCABULARY>//<itemid>`` with VALUENUM in VALUEUOM."""
    if path is None:
        return
    zones = ZoneState()
    described: set[str] = set()
    for chunk in read_chunks(path, ("subject_id", "itemid", "charttime")):
        subject = chunk.integers("subject_id")
        time = parse_time_strings(chunk.text("charttime"), chunk.source, chunk.first_row, zones)
        items = chunk.text("itemid")
        value = chunk.lenient_floats("valuenum")
        text = pc.if_else(value.is_null(), chunk.text("value"), pa.scalar(None, pa.string()))
        writer.add(
            event_columns(
                subject, time, prefixed(vocabulary, items), value, text, chunk.text("valueuom")
            )
        )
        for item in pc.unique(items).to_pylist():
            if item is not None and item not in described and item in labels:
                writer.describe_code(f"{vocabulary}//{item}", labels[item])
                described.add(item)
