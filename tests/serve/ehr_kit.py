"""Building blocks for the service's EHR tests: a canary patient's FHIR Bundle, MEDS rows, a
tiny trained ``ehr-risk`` run, and a stand-in ``ehr-risk`` model.

The stand-in (`FakeRiskTask`) lets the route, storage, audit and viewer be tested without
training: `use_fake_risk_task` makes the service's model cache load it for runs whose
contract says ``ehr-risk`` (no registration: the task registry stays as the modalities
made it). Its predict reads the stored MEDS-rows parquet as the real task does and scores
it by a fixed rule, so results are deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import save_file

import medsight.modalities  # noqa: F401  (registers ehr-risk)
from medsight.ehr.io.meds_dataset import MedsWriter
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.jobs import model_cache
from medsight.tasks import get_task
from medsight.tasks.options import TrainOptions
from medsight.tasks.results import RiskContribution, RiskResult

# ---------------------------------------------------------------- the canary patient

CANARY_GIVEN, CANARY_FAMILY = "Zebediah", "Canarypatient"
CANARY_MRN = "CANARY-MRN-77731"
CANARY_STREET = "77 Canaryfeather Lane"
CANARY_CITY = "Canaryville"
CANARY_PHONE = "+44 7700 977731"
CANARY_EMAIL = "zebediah.canary@example.org"
CANARY_NOTE = "Canarynote: lives alone with his parrot Bartholomew"
CANARY_BIRTH = "1951-06-13"
CANARY_DOCTOR = "Dr Canarydoctor"
#: strings that must never leave the request (searched case-insensitively)
EHR_CANARIES = (
    CANARY_GIVEN,
    CANARY_FAMILY,
    CANARY_MRN,
    CANARY_STREET,
    CANARY_CITY,
    CANARY_PHONE,
    CANARY_PHONE.replace(" ", ""),
    CANARY_EMAIL,
    CANARY_NOTE,
    "Bartholomew",
    CANARY_BIRTH,
    CANARY_BIRTH.replace("-", ""),
    CANARY_DOCTOR,
)
#: the canary patient's observations: (date, HbA1c %)
HBA1C = (("2019-03-04T09:30:00+01:00", 7.1), ("2020-01-20T10:15:00Z", 8.4))


def canary_bundle(patient_id: str = "pat-canary-77731", extra_patient: bool = False) -> dict:
    """One diabetic patient's FHIR R4 Bundle, with identifiers and free text everywhere."""
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"lastUpdated": "2021-01-01T00:00:00Z", "source": CANARY_MRN},
        "text": {"status": "generated", "div": f"<div>{CANARY_GIVEN} {CANARY_FAMILY}</div>"},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": CANARY_CITY},
            }
        ],
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": "urn:oid:1.2.3.4",
                "value": CANARY_MRN,
            }
        ],
        "name": [{"family": CANARY_FAMILY, "given": [CANARY_GIVEN], "text": CANARY_GIVEN}],
        "telecom": [
            {"system": "phone", "value": CANARY_PHONE},
            {"system": "email", "value": CANARY_EMAIL},
        ],
        "gender": "male",
        "birthDate": CANARY_BIRTH,
        "_birthDate": {"extension": [{"url": "x", "valueString": CANARY_NOTE}]},
        "address": [{"line": [CANARY_STREET], "city": CANARY_CITY, "postalCode": "CA7 7NY"}],
        "contact": [{"name": {"text": CANARY_DOCTOR}}],
    }
    subject = {"reference": f"Patient/{patient_id}", "display": f"{CANARY_GIVEN} {CANARY_FAMILY}"}
    resources: list[dict[str, Any]] = [
        patient,
        {
            "resourceType": "Practitioner",
            "id": "doc-1",
            "name": [{"text": CANARY_DOCTOR}],
            "telecom": [{"system": "phone", "value": CANARY_PHONE}],
        },
        {
            "resourceType": "Encounter",
            "id": "enc-1",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
                "display": "ambulatory",
            },
            "subject": subject,
            "participant": [
                {"individual": {"reference": "Practitioner/doc-1", "display": CANARY_DOCTOR}}
            ],
            "period": {"start": "2019-03-04T09:00:00+01:00", "end": "2019-03-04T10:00:00+01:00"},
        },
        {
            "resourceType": "Condition",
            "id": "cond-1",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "E11.9",
                        "display": "Type 2 diabetes mellitus without complications",
                    }
                ],
                "text": f"diabetes, told {CANARY_GIVEN} at home",
            },
            "subject": subject,
            "onsetDateTime": "2015-05-01",
            "note": [{"text": CANARY_NOTE}],
        },
        *[
            {
                "resourceType": "Observation",
                "id": f"obs-{i}",
                "status": "final",
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "4548-4",
                            "display": "Hemoglobin A1c",
                        }
                    ]
                },
                "subject": subject,
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": "%"},
                "note": [{"text": CANARY_NOTE}],
                "performer": [{"reference": "Practitioner/doc-1", "display": CANARY_DOCTOR}],
            }
            for i, (when, value) in enumerate(HBA1C)
        ],
        {
            "resourceType": "Observation",
            "id": "obs-note",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8251-1"}]},
            "subject": subject,
            "effectiveDateTime": "2020-01-20",
            "valueString": CANARY_NOTE,
        },
        {
            "resourceType": "MedicationRequest",
            "id": "med-1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://www.whocc.no/atc", "code": "A10BA02", "display": "metformin"}
                ]
            },
            "subject": subject,
            "authoredOn": "2019-03-04",
            "dosageInstruction": [{"text": f"{CANARY_NOTE}; call {CANARY_PHONE}"}],
        },
        {
            "resourceType": "DocumentReference",
            "id": "doc-note",
            "status": "current",
            "subject": subject,
            "content": [{"attachment": {"contentType": "text/plain", "data": "Q2FuYXJ5bm90ZQ=="}}],
            "description": CANARY_NOTE,
        },
    ]
    if extra_patient:
        other = {"resourceType": "Patient", "id": "pat-2", "name": [{"family": CANARY_FAMILY}]}
        resources.append(other)
    return {
        "resourceType": "Bundle",
        "id": CANARY_MRN,
        "type": "collection",
        "timestamp": "2021-02-02T12:00:00Z",
        "identifier": {"value": CANARY_MRN},
        "entry": [
            {"fullUrl": f"http://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def meds_rows_body(subject_id: int | str = 77731) -> dict:
    """One patient's MEDS rows as JSON, a canary in a text value."""
    return {
        "events": [
            {"subject_id": subject_id, "time": None, "code": "SEX//M"},
            {"subject_id": subject_id, "time": f"{CANARY_BIRTH}T00:00:00", "code": "MEDS_BIRTH"},
            {
                "subject_id": subject_id,
                "time": "2019-03-04T08:30:00",
                "code": "LOINC//4548-4",
                "numeric_value": 7.1,
                "text_value": CANARY_NOTE,
            },
            {
                "subject_id": subject_id,
                "time": "2020-01-20T10:15:00",
                "code": "LOINC//4548-4",
                "numeric_value": 8.4,
            },
            {"subject_id": subject_id, "time": "2020-01-20T10:15:00", "code": "ICD10CM//E11.9"},
        ]
    }


# ---------------------------------------------------------------- a tiny trained run


def train_tiny_risk_run(work: Path, n: int = 90, seed: int = 0) -> Path:
    """``medsight train --task ehr-risk`` (one epoch) on a tiny cohort whose outcome follows a
    rising HbA1c, with the canary bundle's codes in its vocabulary. Returns the run folder.
    """
    rng = np.random.default_rng(seed)
    day0 = dt.datetime(2015, 1, 1)
    rows: dict[str, list] = {k: [] for k in ("subject_id", "time", "code", "numeric_value")}

    def add(s: int, day: float | None, code: str, value: float | None = None) -> None:
        rows["subject_id"].append(s)
        rows["time"].append(None if day is None else day0 + dt.timedelta(days=float(day)))
        rows["code"].append(code)
        rows["numeric_value"].append(value)

    labels = []
    for s in range(1, n + 1):
        add(s, -365.25 * rng.uniform(40, 80), "MEDS_BIRTH")
        add(s, None, "SEX//F" if rng.random() < 0.5 else "SEX//M")
        add(s, rng.uniform(0, 30), "ICD10CM//E11.9")
        slope, day = rng.normal(0, 1.0), rng.uniform(0, 60)
        while day < 720:
            add(s, day, "ENCOUNTER//ambulatory")
            add(s, day, "LOINC//4548-4", 7.5 + slope * day / 365 + rng.normal(0, 0.3))
            if rng.random() < 0.5:
                add(s, day, "ATC//A10BA02")
            day += rng.uniform(30, 90)
        labels.append(
            (s, day0 + dt.timedelta(days=720), bool(rng.random() < 1 / (1 + np.exp(-2.5 * slope))))
        )
    data = work / "meds"
    with MedsWriter(data, dataset_name="tiny", buckets=2, seed=seed) as writer:
        writer.add(rows)
        writer.describe_code("LOINC//4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%")
    labels_path = work / "labels.parquet"
    pq.write_table(
        pa.table(
            {
                "subject_id": pa.array([r[0] for r in labels], pa.int64()),
                "prediction_time": pa.array([r[1] for r in labels], pa.timestamp("us")),
                "boolean_value": pa.array([r[2] for r in labels], pa.bool_()),
            }
        ),
        labels_path,
    )
    run = work / "risk-run"
    get_task("ehr-risk").train(
        data, run, TrainOptions(max_epochs=1, labels=str(labels_path), seed=seed)
    )
    return run


# ---------------------------------------------------------------- the stand-in model

FAKE_RUN_TASK = "ehr-risk"
CALIBRATION_NOTE = (
    "Platt-scaled on 180 tuning patients (40 with the event); tuning ECE 0.09 -> 0.03"
)


class _FakeLoadedRun:
    """Scores a record by its HbA1c values: a fixed, monotone rule (not a model)."""

    def is_2d(self) -> bool:
        return False

    def predict(self, source: Path, out: Path, heatmap: bool) -> RiskResult:
        rows = pq.read_table(source).to_pylist()
        subjects = {r["subject_id"] for r in rows}
        assert len(subjects) == 1, subjects
        timed = [r for r in rows if r["time"] is not None]
        at: dt.datetime = max(r["time"] for r in timed)
        hba1c = [r for r in timed if r["code"] == "LOINC//4548-4"]
        risk = min(0.99, 0.05 * sum(r["numeric_value"] or 0 for r in hba1c))
        contributions = [
            RiskContribution(
                code=r["code"],
                description="Hemoglobin A1c",
                hours_before=(at - r["time"]).total_seconds() / 3600,
                value=r["numeric_value"],
                contribution=round(0.05 * (r["numeric_value"] or 0), 4),
            )
            for r in sorted(hba1c, key=lambda r: r["time"], reverse=True)
        ]
        contributions.append(
            RiskContribution(code="ATC//A10BA02", hours_before=24.0, contribution=-0.02)
        )
        (out / "explanation.json").write_text(
            json.dumps({"events": len(rows), "prediction_time": at.isoformat()})
        )
        return RiskResult(
            files=["explanation.json"],
            risk=risk,
            probability=round(risk * 0.9, 4),
            refer=risk * 0.9 >= 0.5,
            threshold=0.5,
            calibration=CALIBRATION_NOTE,
            uncertain=False,
            contributions=contributions,
            prediction_time=at,
            label_definition="a major complication within 365 days",
            network="gru",
        )


class FakeRiskTask:
    name = "fake-ehr-risk"
    run_name = FAKE_RUN_TASK
    aliases: tuple[str, ...] = ()

    def load(self, folder: Path) -> _FakeLoadedRun:
        assert (folder / "calibration.json").is_file()  # the registry copied it
        return _FakeLoadedRun()


def write_fake_risk_run(run_dir: Path) -> Path:
    """A run folder the registry accepts: contract, weights, calibration."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model.json").write_text(
        json.dumps(
            {
                "task": FAKE_RUN_TASK,
                "model_name": "gru",
                "class_names": ["no event", "event"],
                "label_definition": "a major complication within 365 days",
            }
        )
    )
    save_file({"w": torch.zeros(2)}, str(run_dir / "model.safetensors"))
    (run_dir / "calibration.json").write_text(json.dumps({"note": CALIBRATION_NOTE}))
    (run_dir / "model_card.md").write_text("# ehr risk\n\nSynthetic test model.\n")
    return run_dir


def add_fake_risk_model(registry: ModelRegistry, work: Path, name: str = "risk") -> None:
    registry.add(write_fake_risk_run(work / name), name)


def use_fake_risk_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's model cache loads `FakeRiskTask` for ``ehr-risk`` runs."""
    original = model_cache.task_of_run
    fake = FakeRiskTask()

    def task_of_run(run_dir: Path) -> Any:
        contract = json.loads((Path(run_dir) / "model.json").read_text())
        return fake if contract.get("task") == FAKE_RUN_TASK else original(run_dir)

    monkeypatch.setattr(model_cache, "task_of_run", task_of_run)
