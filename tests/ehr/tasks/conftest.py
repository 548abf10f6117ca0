"""A tiny learnable MEDS cohort with labels, written with the real MedsWriter (task tests)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medsight.ehr.io.meds_dataset import MedsWriter

DAY0 = dt.datetime(2100, 1, 1)
PREDICTION_DAY = 720
OUTCOME = "ICD10CM//E11.2"


def write_tiny_cohort(out: Path, n: int = 120, seed: int = 0) -> tuple[Path, Path]:
    """MEDS folder + labels parquet: the outcome follows a rising HbA1c (learnable).

    Each subject: birth, sex, visits every ~60 days with an HbA1c value and noise codes;
    one prediction time at day 720; the outcome code within the next year for about a third.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("subject_id", "time", "code", "numeric_value")}

    def add(s: int, day: float | None, code: str, value: float | None = None) -> None:
        rows["subject_id"].append(s)
        rows["time"].append(None if day is None else DAY0 + dt.timedelta(days=float(day)))
        rows["code"].append(code)
        rows["numeric_value"].append(value)

    labels = []
    for s in range(1, n + 1):
        add(s, -365.25 * rng.uniform(40, 80), "MEDS_BIRTH")
        add(s, None, "SEX//F" if rng.random() < 0.5 else "SEX//M")
        slope = rng.normal(0, 1.0)
        day = rng.uniform(0, 60)
        while day < PREDICTION_DAY:
            add(s, day, "ENCOUNTER//ambulatory")
            add(s, day, "LOINC//4548-4", 7.5 + slope * day / 365 + rng.normal(0, 0.3))
            if rng.random() < 0.5:
                add(s, day, f"ICD10CM//Z{rng.integers(0, 8)}")
            if slope > 0.5 and rng.random() < 0.5:
                add(s, day, "ATC//A10BA02")
            day += rng.uniform(30, 90)
        event = rng.random() < 1 / (1 + np.exp(-(2.5 * slope - 0.8)))
        if event:
            add(s, PREDICTION_DAY + rng.uniform(1, 360), OUTCOME)
        labels.append((s, DAY0 + dt.timedelta(days=PREDICTION_DAY), bool(event)))
    data = out / "meds"
    with MedsWriter(data, dataset_name="tiny", buckets=2, seed=seed) as writer:
        writer.add(rows)
    table = pa.table(
        {
            "subject_id": pa.array([r[0] for r in labels], pa.int64()),
            "prediction_time": pa.array([r[1] for r in labels], pa.timestamp("us")),
            "boolean_value": pa.array([r[2] for r in labels], pa.bool_()),
        }
    )
    labels_path = out / "labels.parquet"
    pq.write_table(table, labels_path)
    return data, labels_path


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(MEDS folder, labels.parquet) of 120 subjects; shared, do not modify."""
    return write_tiny_cohort(tmp_path_factory.mktemp("ehr-tiny"), 120, seed=1)


@pytest.fixture(scope="session")
def trained_run(tiny_cohort: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gru + retain run on the tiny cohort (2 epochs, baselines included); do not modify."""
    from medsight.ehr.tasks.risk_train import train_risk
    from medsight.tasks.options import TrainOptions

    data, labels = tiny_cohort
    run = tmp_path_factory.mktemp("ehr-run") / "run"
    train_risk(data, run, TrainOptions(max_epochs=2, labels=str(labels), model_name="gru,retain"))
    return run
