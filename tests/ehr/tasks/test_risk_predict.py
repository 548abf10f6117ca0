"""Predicting with an ehr-risk run: one record in (MEDS rows or FHIR), a RiskResult out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from medsight.ehr.tasks.risk import RiskTask
from medsight.errors import InputError
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import RiskResult, parse_result


def _one_patient(data: Path, out: Path) -> Path:
    shard = sorted((data / "data" / "held_out").glob("*.parquet"))[0]
    events = pq.read_table(shard)
    subject = events.column("subject_id")[0]
    pq.write_table(events.filter(pc.equal(events.column("subject_id"), subject)), out)
    return out


def _rows_json(parquet: Path, out: Path, extra: list[dict] | None = None, when: str = "") -> Path:
    rows = [
        {
            "time": None if r["time"] is None else r["time"].isoformat(),
            "code": r["code"],
            "numeric_value": r["numeric_value"],
        }
        for r in pq.read_table(parquet).to_pylist()
    ]
    body: dict = {"events": rows + (extra or [])}
    if when:
        body["prediction_time"] = when
    out.write_text(json.dumps(body))
    return out


def test_the_service_loader_answers_with_a_calibrated_explained_risk(
    trained_run: Path, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    loaded = RiskTask().load(trained_run)
    assert loaded.is_2d()
    record = loaded.predict(_one_patient(tiny_cohort[0], tmp_path / "one.parquet"), tmp_path, False)
    assert isinstance(record, RiskResult) and record.task == "ehr-risk"
    assert 0 <= record.risk <= 1 and 0 <= record.probability <= 1
    assert record.refer == (record.probability >= record.threshold)
    assert record.calibration and record.network in {"gru", "retain"}
    shares = [abs(c.contribution) for c in record.contributions]
    assert 0 < len(shares) <= 10 and shares == sorted(shares, reverse=True)
    assert all(c.hours_before >= 0 for c in record.contributions)
    assert parse_result(json.loads(json.dumps(record.to_json()))) == record


def test_events_after_the_prediction_time_in_a_record_change_nothing(
    trained_run: Path, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    loaded = RiskTask().load(trained_run)
    parquet = _one_patient(tiny_cohort[0], tmp_path / "one.parquet")
    when = "2101-12-01T00:00:00"
    clean = _rows_json(parquet, tmp_path / "clean.json", when=when)
    future = [
        {"time": "2101-12-01T00:00:01", "code": "ICD10CM//E11.2"},
        {"time": "2102-01-01T00:00:00", "code": "LOINC//4548-4", "numeric_value": 1e6},
    ]
    leaky = _rows_json(parquet, tmp_path / "leaky.json", future, when=when)
    a, b = loaded.predict(clean, tmp_path, False), loaded.predict(leaky, tmp_path, False)
    assert a.risk == b.risk and a.contributions == b.contributions


def test_a_fhir_bundle_is_scored(trained_run: Path, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p",
                    "gender": "female",
                    "birthDate": "2040-05-01",
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": "Patient/p"},
                    "effectiveDateTime": "2101-06-01T10:00:00Z",
                    "valueQuantity": {"value": 9.1, "unit": "%"},
                }
            },
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    record = RiskTask().load(trained_run).predict(path, tmp_path, False)
    assert any(c.code == "LOINC//4548-4" for c in record.contributions)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON file"),
        ('{"resourceType": "Patient"}', "neither a FHIR Bundle nor MEDS rows"),
        (
            '[{"time": "2101-01-01", "code": "X//1", "subject_id": 1},'
            ' {"time": "2101-01-01", "code": "X//1", "subject_id": 2}]',
            "several patients",
        ),
        ('[{"time": "2101-01-01", "code": "X//1", "numeric_value": "high"}]', "row 1: numeric"),
        ('[{"time": "yesterday", "code": "X//1"}]', "yesterday|time"),
    ],
)
def test_bad_records_are_one_line_errors(
    trained_run: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "record.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        RiskTask().load(trained_run).predict(path, tmp_path, False)


def test_cli_prediction_prints_json_records(
    trained_run: Path, tiny_cohort: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    parquet = _one_patient(tiny_cohort[0], tmp_path / "one.parquet")
    RiskTask().predict(trained_run, [parquet, parquet], PredictOptions(as_json=True))
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 2 and records[0]["input"] == str(parquet)
    assert records[0]["risk"] == records[1]["risk"]
    with pytest.raises(InputError, match="imaging runs"):
        RiskTask().predict(trained_run, [parquet], PredictOptions(out=tmp_path / "o"))
    with pytest.raises(InputError, match="medsight train"):
        RiskTask().predict(tmp_path, [parquet], PredictOptions())


def test_onnx_export_gives_the_torch_logits(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    import onnxruntime as ort

    from medsight.ehr.tasks.risk_export import INPUT_NAMES
    from medsight.ehr.tasks.risk_predict import LoadedRisk

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("cache", "checkpoints"))
    path = RiskTask().export(run)
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 5])[:, None]
    batch = {
        "code": torch.randint(2, 10, (3, 7), generator=g) * mask,
        "value_bin": torch.randint(0, 5, (3, 7), generator=g) * mask,
        "value": torch.randn(3, 7, generator=g) * mask,
        "hours_before": torch.rand(3, 7, generator=g).mul(1e3).sort(1, descending=True).values,
        "delta_hours": torch.rand(3, 7, generator=g) * mask,
        "mask": mask,
        "age_years": torch.tensor([50.0, 70.0, 61.0]),
        "sex": torch.tensor([1, 2, 0]),
    }
    session = ort.InferenceSession(str(path))
    (onnx_logits,) = session.run(None, {n: batch[n].numpy() for n in INPUT_NAMES})
    with torch.no_grad():
        torch_logits = LoadedRisk(run).models[0](batch).numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-5)
