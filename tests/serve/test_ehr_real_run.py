"""The golden EHR path through the service with a really trained run: records in, calibrated
risk and its events out (``medsight train --task ehr-risk`` for one epoch on a tiny cohort,
registered as a host would, served without stand-ins).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from ehr_kit import HBA1C, canary_bundle, meds_rows_body, train_tiny_risk_run
from service_kit import Service, running_service

from medsight.ehr.deid import deidentify_bundle
from medsight.ehr.tasks.risk_calibration import RiskCalibration
from medsight.releases.model_registry import ModelRegistry
from medsight.tasks.results import RiskResult, parse_result

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("ehr-real")
    run = train_tiny_risk_run(tmp / "train")
    registry = ModelRegistry(tmp / "registry")
    registry.add(run, "diabetes-risk")
    with running_service(tmp, f"sqlite:///{tmp}/medsight.db", registry=registry) as service:
        yield service


def test_a_bundle_gets_the_trained_runs_calibrated_risk_and_events(served: Service) -> None:
    h = served.tokens.header("clinician")
    r = served.client.post(
        "/v1/predict/diabetes-risk", content=json.dumps(canary_bundle()), headers={**h, **FHIR}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    result = parse_result(body["result"])
    assert isinstance(result, RiskResult)
    folder = served.registry.verified_path("diabetes-risk", "1")
    assert {"calibration.json", "codes.json", "plan.json"} <= {p.name for p in folder.iterdir()}
    calibration = RiskCalibration.load(folder)
    assert result.calibration == calibration.note()
    assert result.threshold == calibration.threshold
    assert result.refer is (result.probability >= calibration.threshold)
    assert 0 < result.risk < 1 and 0 <= result.probability <= 1
    assert result.model is not None and result.model.name == "diabetes-risk"
    # predicted at the record's latest event, in the record's shifted time
    offset = deidentify_bundle(
        canary_bundle(), served.settings.data_dir.joinpath("deid.key").read_text().strip()
    ).offset_days
    last = dt.datetime.fromisoformat(HBA1C[-1][0]).astimezone(dt.UTC).replace(tzinfo=None)
    assert result.prediction_time == last + dt.timedelta(days=offset)
    # the events behind the score are the record's, with the run's words for them
    assert result.contributions and all(c.hours_before >= 0 for c in result.contributions)
    hba1c = [c for c in result.contributions if c.code == "LOINC//4548-4"]
    assert len(hba1c) == len(HBA1C)
    assert all(c.value is None or min(abs(c.value - v) for _, v in HBA1C) < 1e-4 for c in hba1c)
    assert all(c.description and "Hemoglobin A1c" in c.description for c in hba1c)
    # the viewer shows it
    meta = served.client.get(f"/v1/jobs/{body['job_id']}/viewer", headers=h).json()
    assert meta["result"]["calibration"] == calibration.note()
    assert meta["result"]["contributions"] == body["result"]["contributions"]


def test_meds_rows_are_scored_by_the_trained_run(served: Service) -> None:
    h = {**served.tokens.header("service"), "Content-Type": "application/json"}
    r = served.client.post(
        "/v1/predict/diabetes-risk", content=json.dumps(meds_rows_body()), headers=h
    )
    assert r.status_code == 200, r.text
    result = parse_result(r.json()["result"])
    assert isinstance(result, RiskResult) and result.contributions
