"""``--from eicu``: an eICU Collaborative Research Database export folder to MEDS.

eICU has no dates: every time is a minute offset from the unit (ICU) admission of its
``patientunitstayid``, and only the hospital discharge year is given. So times here are on
a synthetic clock, the same for every run:

- each hospital stay (``patienthealthsystemstayid``) is admitted at 00:00 on 1 January of its
  ``hospitaldischargeyear`` (2000 when blank), plus 60 days for each earlier-numbered stay of
  the same patient in that year (eICU does not order a patient's hospital stays, so they
  are placed apart by id);
- a unit stay is admitted ``-hospitaladmitoffset`` minutes after its hospital admission, and
  every event of the stay at its offset from there.

Intervals within a hospital stay are therefore exact; across stays they are not, and
calendar dates mean nothing. The subject is ``uniquepid`` mapped to an integer: its 1-based
rank among the export's sorted ``uniquepid`` values (stable for the same export; the
identifier itself is not written).

Rows: ``MEDS_BIRTH`` from the age at the patient's first stay (``> 89`` read as 90; year
precision, 1 January), ``SEX//F|M|UNK``; per hospital stay ``ENCOUNTER//inpatient`` and
``DISCHARGE//inpatient`` (text_value: discharge location), ``MEDS_DEATH`` at discharge when
the discharge status is Expired; per unit stay ``ENCOUNTER//icu`` (text_value: unit type),
``EICU_UNIT//discharge``, admission weight (kg) and height (cm). diagnosis: ``ICD10CM//``
when its ``icd9code`` holds an ICD-10 code (eICU lists "ICD-9, ICD-10" pairs), else
``ICD9CM//``, else ``EICU_DX//<diagnosis string>``. admissionDx ``EICU_ADMIT_DX//<name>``,
lab ``EICU_LAB//<labname>`` with its result and unit, medication ``EICU_DRUG//<drug name>``
(``EICU_HICL//<code>`` without a name; cancelled orders skipped), treatment
``EICU_TREATMENT//<path>``. physicalExam is not imported: its values are mostly free-text
note paths, and its numeric vital signs repeat what lab and the stays carry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medsight.ehr.io.csv_tables import Chunk, find_table, read_chunks, require_table
from medsight.ehr.io.event_columns import event_columns, lookup, mapped, prefixed
from medsight.ehr.io.icd_codes import diagnosis_code
from medsight.ehr.io.meds_dataset import BIRTH, DEATH, MedsWriter
from medsight.errors import InputError

EPOCH_YEAR = 2000
STAY_GAP = timedelta(days=60)
SEX = {"female": "SEX//F", "male": "SEX//M"}
TIME = pa.timestamp("us")


@dataclass(frozen=True)
class Stays:
    """Each unit stay's subject and admission time on the synthetic clock."""

    stay_id: pa.Array
    subject_id: pa.Array
    unit_admit: pa.Array

    def place(self, chunk: Chunk, offset_column: str) -> tuple[pa.Array, pa.Array]:
        """(subject_id, time) of a chunk's rows from their stay and minute offset."""
        stays = chunk.integers("patientunitstayid")
        subject = lookup(stays, self.stay_id, self.subject_id)
        admit = lookup(stays, self.stay_id, self.unit_admit)
        minutes = chunk.integers(offset_column, required=False)
        time = pc.add(admit, pc.multiply(minutes, 60_000_000).cast(pa.duration("us")))
        return subject, time


def import_eicu(
    source: Path, out: Path, *, splits: Mapping[int, str] | None = None, seed: int = 0
) -> None:
    """Write the MEDS folder ``out`` from an eICU export folder (see the module docstring).

    Raises:
        InputError: not a folder, no patient table, or a bad value (names the file and row).
    """
    if not source.is_dir():
        raise InputError(f"{source}: --from eicu takes the export folder (patient.csv, ...)")
    with MedsWriter(out, dataset_name="eICU", source=str(source), splits=splits, seed=seed) as w:
        stays = write_patients(w, require_table(source, "patient"))
        write_coded(w, stays, find_table(source, "diagnosis"), "diagnosisoffset", _diagnosis)
        write_coded(
            w,
            stays,
            find_table(source, "admissionDx"),
            "admitdxenteredoffset",
            lambda c: prefixed("EICU_ADMIT_DX", c.text("admitdxname")),
        )
        write_coded(
            w,
            stays,
            find_table(source, "treatment"),
            "treatmentoffset",
            lambda c: prefixed("EICU_TREATMENT", c.text("treatmentstring")),
        )
        write_coded(w, stays, find_table(source, "medication"), "drugstartoffset", _medication)
        write_labs(w, stays, find_table(source, "lab"))


def write_patients(writer: MedsWriter, path: Path) -> Stays:
    """Birth, sex, hospital and unit stay rows; returns the stays on the synthetic clock."""
    rows: list[dict[str, str | None]] = []
    columns = (
        "patientunitstayid",
        "patienthealthsystemstayid",
        "uniquepid",
        "gender",
        "age",
        "hospitaladmitoffset",
        "hospitaldischargeyear",
        "hospitaldischargeoffset",
        "hospitaldischargelocation",
        "hospitaldischargestatus",
        "unitdischargeoffset",
        "unittype",
        "admissionweight",
        "admissionheight",
    )
    numbers: list[
        tuple[int, int, int | None, int | None, int | None, float | None, float | None]
    ] = []
    for chunk in read_chunks(path, columns[:3]):
        stay = chunk.integers("patientunitstayid").to_pylist()
        system = chunk.integers("patienthealthsystemstayid").to_pylist()
        admit = chunk.integers("hospitaladmitoffset", required=False).to_pylist()
        dis = chunk.integers("hospitaldischargeoffset", required=False).to_pylist()
        unit_dis = chunk.integers("unitdischargeoffset", required=False).to_pylist()
        weight = chunk.lenient_floats("admissionweight").to_pylist()
        height = chunk.lenient_floats("admissionheight").to_pylist()
        year = chunk.integers("hospitaldischargeyear", required=False).to_pylist()
        text = {name: chunk.text(name).to_pylist() for name in columns}
        for i in range(len(chunk)):
            if text["uniquepid"][i] is None:
                chunk.fail(i, "uniquepid is empty")
            rows.append({name: text[name][i] for name in columns})
            numbers.append((stay[i], system[i], year[i], admit[i], dis[i], weight[i], height[i]))
            rows[-1]["unit_discharge"] = None if unit_dis[i] is None else str(unit_dis[i])
    if not rows:
        raise InputError(f"{path}: no patient stays")
    subject_of = {pid: n for n, pid in enumerate(sorted({str(r["uniquepid"]) for r in rows}), 1)}
    # hospital stays: admission on the synthetic clock (see the module docstring)
    hospital: dict[int, datetime] = {}
    per_year: dict[tuple[str, int], list[int]] = {}
    for row, (_, system, year, *_rest) in zip(rows, numbers, strict=True):
        key = (str(row["uniquepid"]), year or EPOCH_YEAR)
        if system not in per_year.setdefault(key, []):
            per_year[key].append(system)
    for (_, year), systems in per_year.items():
        for rank, system in enumerate(sorted(systems)):
            hospital[system] = datetime(year, 1, 1) + rank * STAY_GAP
    events: dict[str, list] = {
        k: [] for k in ("subject_id", "time", "code", "numeric_value", "text_value", "unit")
    }

    def emit(
        subject: int,
        time: datetime | None,
        code: str,
        value: float | None = None,
        text: str | None = None,
        unit: str | None = None,
    ) -> None:
        for name, item in zip(events, (subject, time, code, value, text, unit), strict=True):
            events[name].append(item)

    first_stay: dict[int, tuple[datetime, int | None, str | None]] = {}
    seen_hospital: set[int] = set()
    stay_ids, stay_subjects, stay_admits = [], [], []
    for row, (stay, system, _year, admit_offset, dis_offset, weight, height) in zip(
        rows, numbers, strict=True
    ):
        subject = subject_of[str(row["uniquepid"])]
        hospital_admit = hospital[system]
        unit_admit = hospital_admit - timedelta(minutes=admit_offset or 0)
        stay_ids.append(stay)
        stay_subjects.append(subject)
        stay_admits.append(unit_admit)
        age = _age(row["age"])
        if subject not in first_stay or hospital_admit < first_stay[subject][0]:
            first_stay[subject] = (hospital_admit, age, row["gender"])
        if system not in seen_hospital:
            seen_hospital.add(system)
            emit(subject, hospital_admit, "ENCOUNTER//inpatient")
            if dis_offset is not None:
                discharge = unit_admit + timedelta(minutes=dis_offset)
                emit(
                    subject,
                    discharge,
                    "DISCHARGE//inpatient",
                    text=row["hospitaldischargelocation"],
                )
                if (row["hospitaldischargestatus"] or "").lower() == "expired":
                    emit(subject, discharge, DEATH)
        emit(subject, unit_admit, "ENCOUNTER//icu", text=row["unittype"])
        if row["unit_discharge"] is not None:
            emit(
                subject,
                unit_admit + timedelta(minutes=int(row["unit_discharge"])),
                "EICU_UNIT//discharge",
            )
        if weight is not None:
            emit(subject, unit_admit, "EICU_VITAL//admissionweight", weight, unit="kg")
        if height is not None:
            emit(subject, unit_admit, "EICU_VITAL//admissionheight", height, unit="cm")
    for subject, (admit, age, gender) in first_stay.items():
        if age is not None:
            emit(subject, datetime(admit.year - age, 1, 1), BIRTH)
        emit(subject, None, SEX.get((gender or "").lower(), "SEX//UNK"))
    writer.add({**events, "time": pa.array(events["time"], TIME)})
    writer.describe_code("EICU_VITAL//admissionweight", "admission weight", "kg")
    writer.describe_code("EICU_VITAL//admissionheight", "admission height", "cm")
    return Stays(
        pa.array(stay_ids, pa.int64()),
        pa.array(stay_subjects, pa.int64()),
        pa.array(stay_admits, TIME),
    )


def _age(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text.startswith(">"):
        return 90
    return int(text) if text.isdigit() else None


def write_coded(
    writer: MedsWriter,
    stays: Stays,
    path: Path | None,
    offset: str,
    codes: Callable[[Chunk], pa.Array],
) -> None:
    """Rows of a table whose code is computed per chunk by ``codes(chunk)``."""
    if path is None:
        return
    for chunk in read_chunks(path, ("patientunitstayid", offset)):
        subject, time = stays.place(chunk, offset)
        writer.add(event_columns(subject, time, codes(chunk)))


def _diagnosis(chunk: Chunk) -> pa.Array:
    icd = mapped(chunk.text("icd9code"), _best_icd)
    return pc.coalesce(icd, prefixed("EICU_DX", chunk.text("diagnosisstring")))


def _best_icd(text: str) -> str | None:
    codes = [c for c in (diagnosis_code(part) for part in text.split(",")) if c is not None]
    for vocabulary in ("ICD10CM//", "ICD9CM//"):
        for code in codes:
            if code.startswith(vocabulary):
                return code
    return None


def _medication(chunk: Chunk) -> pa.Array:
    cancelled = pc.fill_null(
        pc.equal(pc.utf8_lower(chunk.text("drugordercancelled")), "yes"), False
    )
    code = pc.coalesce(
        prefixed("EICU_DRUG", chunk.text("drugname")),
        prefixed("EICU_HICL", chunk.text("drughiclseqno")),
    )
    return pc.if_else(cancelled, pa.scalar(None, pa.string()), code)


def write_labs(writer: MedsWriter, stays: Stays, path: Path | None) -> None:
    """``EICU_LAB//<labname>`` rows with the result in ``labmeasurenamesystem`` units."""
    if path is None:
        return
    for chunk in read_chunks(path, ("patientunitstayid", "labresultoffset", "labname")):
        subject, time = stays.place(chunk, "labresultoffset")
        value = chunk.lenient_floats("labresult")
        text = pc.if_else(
            value.is_null(), chunk.text("labresulttext"), pa.scalar(None, pa.string())
        )
        code = prefixed("EICU_LAB", chunk.text("labname"))
        writer.add(
            event_columns(subject, time, code, value, text, chunk.text("labmeasurenamesystem"))
        )
