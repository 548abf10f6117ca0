"""The cohort has the structure the issue describes, in each of its three formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from medsight.cli.synth import app
from medsight.ehr.io.meds_dataset import open_meds, validate_meds
from medsight.ehr.synth import OUTCOME_PREFIXES
from medsight.ehr.synth.formats import write_synthetic_ehr
from medsight.errors import InputError


def _events(root: Path) -> pa.Table:
    dataset = open_meds(root)
    return pa.concat_tables(dataset.read_shard(path) for path in dataset.shard_paths())


def _subjects_with(events: pa.Table, code: str) -> set[int]:
    rows = events.filter(pc.equal(events.column("code"), code))
    return set(rows.column("subject_id").to_pylist())


def test_meds_variant_validates_and_has_the_stated_codes(meds_cohort: Path) -> None:
    counts = validate_meds(meds_cohort)
    assert counts["subjects"] == 600
    events = _events(meds_cohort)
    codes = set(pc.unique(events.column("code")).to_pylist())
    expected = {
        "MEDS_BIRTH", "MEDS_DEATH", "SEX//F", "SEX//M", "ENCOUNTER//ambulatory",
        "ENCOUNTER//emergency", "ENCOUNTER//inpatient", "DISCHARGE//home", "ICD10CM//E11.9",
        "ICD10CM//I10", "ICD10CM//E78.5", "ICD10CM//E66.9", "LOINC//4548-4", "LOINC//2345-7",
        "LOINC//2160-0", "LOINC//33914-3", "LOINC//13457-7", "LOINC//9318-7", "LOINC//8480-6",
        "LOINC//8462-4", "LOINC//39156-5", "LOINC//2339-0", "LOINC//55423-8", "ATC//A10BA02",
        "ATC//A10AE04", "ATC//A10BK01", "ATC//C09AA05", "ATC//C10AA05",
    }  # fmt: skip
    assert expected <= codes
    for prefix in OUTCOME_PREFIXES:
        assert any(code.startswith(prefix) for code in codes), prefix
    # one birth per subject, sex static (null time), as many discharges as admissions
    births = events.filter(pc.equal(events.column("code"), "MEDS_BIRTH"))
    assert births.num_rows == 600
    sex = events.filter(pc.starts_with(events.column("code"), "SEX//"))
    assert sex.num_rows == 600 and sex.column("time").null_count == 600
    inpatient = len(events.filter(pc.equal(events.column("code"), "ENCOUNTER//inpatient")))
    assert inpatient == len(events.filter(pc.equal(events.column("code"), "DISCHARGE//home")))
    # deaths: some, each the subject's last event
    dead = _subjects_with(events, "MEDS_DEATH")
    assert 0.02 * 600 < len(dead) < 0.3 * 600
    timed = events.filter(pc.is_valid(events.column("time")))
    last = timed.group_by("subject_id").aggregate([("time", "max")])
    deaths = events.filter(pc.equal(events.column("code"), "MEDS_DEATH"))
    last_of = dict(zip(last.column(0).to_pylist(), last.column(1).to_pylist(), strict=True))
    for subject, time in zip(
        deaths.column("subject_id").to_pylist(), deaths.column("time").to_pylist(), strict=True
    ):
        assert last_of[subject] == time
    # units recorded for numeric codes
    meta = open_meds(meds_cohort).codes().to_pylist()
    units = {row["code"]: row["unit"] for row in meta}
    assert units["LOINC//4548-4"] == "%"
    assert units["LOINC//2345-7"] == "mg/dL" and units["LOINC//14749-6"] == "mmol/L"
    assert units["LOINC//33914-3"] == "mL/min/1.73m2"


def test_two_sites_code_differently(meds_cohort: Path) -> None:
    events = _events(meds_cohort)
    mg = _subjects_with(events, "LOINC//2345-7")
    mmol = _subjects_with(events, "LOINC//14749-6")
    assert len(mg) > 100 and len(mmol) > 100
    assert not mg & mmol  # a patient belongs to one site
    assert _subjects_with(events, "ICD10CM//E11.65") & mmol
    mmol_values = events.filter(pc.equal(events.column("code"), "LOINC//14749-6"))
    mg_values = events.filter(pc.equal(events.column("code"), "LOINC//2345-7"))
    ratio = (
        pc.mean(mg_values.column("numeric_value")).as_py()
        / pc.mean(mmol_values.column("numeric_value")).as_py()
    )
    assert 14 < ratio < 22  # mg/dL vs mmol/L


def test_home_monitoring_is_a_dense_irregular_subset(meds_cohort: Path) -> None:
    events = _events(meds_cohort)
    home = events.filter(pc.equal(events.column("code"), "LOINC//2339-0"))
    subjects = set(home.column("subject_id").to_pylist())
    assert 0.04 * 600 < len(subjects) < 0.3 * 600
    per_subject = np.bincount(home.column("subject_id").to_numpy())
    assert np.median(per_subject[per_subject > 0]) > 20  # daily-ish readings
    minutes = pc.minute(home.column("time")).to_numpy()
    assert len(np.unique(minutes)) > 30  # not on a fixed schedule


def test_sicker_patients_are_measured_more_often(meds_cohort: Path) -> None:
    events = _events(meds_cohort)
    a1c = events.filter(pc.equal(events.column("code"), "LOINC//4548-4"))
    mean = a1c.group_by("subject_id").aggregate([("numeric_value", "mean")])
    visits = events.filter(pc.equal(events.column("code"), "ENCOUNTER//ambulatory"))
    visit_times = visits.group_by("subject_id").aggregate(
        [("time", "count"), ("time", "min"), ("time", "max")]
    )
    span = {
        s: (n, (hi - lo).days + 30)
        for s, n, lo, hi in zip(*(visit_times.column(i).to_pylist() for i in range(4)), strict=True)
    }
    rate, level = [], []
    for subject, value in zip(mean.column(0).to_pylist(), mean.column(1).to_pylist(), strict=True):
        if subject in span and span[subject][1] > 365:
            rate.append(span[subject][0] / span[subject][1])
            level.append(value)
    assert np.corrcoef(rate, level)[0, 1] > 0.1


def test_fhir_variant_is_valid_fhir_r4_with_phi(tmp_path: Path) -> None:
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.patient import Patient

    out = write_synthetic_ehr(tmp_path / "fhir", 40, 0, "fhir")
    models = {
        "Patient": Patient,
        "Encounter": Encounter,
        "Condition": Condition,
        "Observation": Observation,
        "MedicationRequest": MedicationRequest,
    }
    patients = set()
    for kind, model in models.items():
        lines = (out / f"{kind}.ndjson").read_text().splitlines()
        assert lines, kind
        sample = (
            lines[:: max(1, len(lines) // 60)]
            + [line for line in lines if '"note"' in line or '"hospitalization"' in line][:20]
        )
        for line in sample:
            resource = json.loads(line)
            assert resource["resourceType"] == kind
            model.model_validate(resource)
        if kind == "Patient":
            patients = {json.loads(line)["id"] for line in lines}
            first = json.loads(lines[0])
            assert first["name"][0]["family"] and first["identifier"][0]["value"]
            assert first["address"][0]["line"] and first["telecom"][0]["value"]
            assert len(first["birthDate"]) == 10
        else:
            refs = {json.loads(line)["subject"]["reference"] for line in lines}
            assert {ref.removeprefix("Patient/") for ref in refs} <= patients
    observations = (out / "Observation.ndjson").read_text()
    assert '"system":"http://loinc.org"' in observations and '"note"' in observations
    assert '"system":"http://hl7.org/fhir/sid/icd-10-cm"' in (out / "Condition.ndjson").read_text()
    assert '"system":"http://www.whocc.no/atc"' in (out / "MedicationRequest.ndjson").read_text()


def test_events_csv_variant_has_the_plain_long_shape(tmp_path: Path) -> None:
    out = write_synthetic_ehr(tmp_path / "csv", 50, 0, "events-csv")
    with open(out / "events.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["subject_id", "time", "code", "numeric_value", "text_value"]
    assert {row["subject_id"] for row in rows} == {str(i) for i in range(1, 51)}
    timed = [row for row in rows if row["time"]]
    assert all(len(row["time"]) == 19 and row["time"][10] == "T" for row in timed)
    assert any(row["code"].startswith("SEX//") and not row["time"] for row in rows)
    hba1c = [float(row["numeric_value"]) for row in rows if row["code"] == "LOINC//4548-4"]
    assert hba1c and all(4 < v < 16 for v in hba1c)
    with open(out / "splits.csv", newline="") as handle:
        splits = list(csv.DictReader(handle))
    assert len(splits) == 50
    assert {row["split"] for row in splits} <= {"train", "tuning", "held_out"}


def test_cli_writes_the_cohort_and_rejects_a_bad_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ehr", str(tmp_path / "d"), "--patients", "20"])
    assert result.exit_code == 0, result.output
    assert validate_meds(tmp_path / "d")["subjects"] == 20
    with pytest.raises(InputError, match="--format"):
        write_synthetic_ehr(tmp_path / "e", 5, 0, "parquet")
    assert not (tmp_path / "e").exists()
